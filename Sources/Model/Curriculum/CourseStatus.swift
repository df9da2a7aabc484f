/// Derived, never replicated: where a learner stands in a course.
///
/// Complete and eligible by ``CompletionRule``, the programme's one rule.
public struct CourseStatus: Equatable, Sendable {
    public let courseID: String
    public let isEnrolled: Bool
    public let requiredLessons: Int
    public let completedRequiredLessons: Int
    public let quizzes: Int
    public let passedQuizzes: Int

    public var isComplete: Bool {
        CompletionRule.isComplete(
            requiredLessons: requiredLessons, completedRequiredLessons: completedRequiredLessons, quizzes: quizzes,
            passedQuizzes: passedQuizzes)
    }
    public var isEligible: Bool { CompletionRule.isEligible(enrolled: isEnrolled, complete: isComplete) }

    package init(
        courseID: String, isEnrolled: Bool, requiredLessons: Int, completedRequiredLessons: Int, quizzes: Int,
        passedQuizzes: Int
    ) {
        self.courseID = courseID
        self.isEnrolled = isEnrolled
        self.requiredLessons = requiredLessons
        self.completedRequiredLessons = completedRequiredLessons
        self.quizzes = quizzes
        self.passedQuizzes = passedQuizzes
    }

    package var missingSummary: String {
        "\(requiredLessons - completedRequiredLessons) required lesson(s) not complete, "
            + "\(quizzes - passedQuizzes) quiz(zes) not passed"
    }
}

/// Derived: a learner's best score on a quiz (by fraction of the maximum).
public struct BestScore: Equatable, Sendable {
    public let quizID: String
    public let score: Int
    public let maxScore: Int

    public init(quizID: String, score: Int, maxScore: Int) {
        self.quizID = quizID; self.score = score; self.maxScore = maxScore
    }
}
