/// Derived, never replicated: where a learner stands in a course.
///
/// The rule: a course is **complete** when every required lesson has a completion time
/// (progress reached 100) and, for every quiz of the course, the learner's best attempt scored at
/// least the course's pass percent (80 by default) of the quiz's maximum. A learner is **eligible**
/// for the course certificate when the course is complete and they are currently enrolled.
public struct CourseStatus: Equatable, Sendable {
    public let courseID: String
    public let isEnrolled: Bool
    public let requiredLessons: Int
    public let completedRequiredLessons: Int
    public let quizzes: Int
    public let passedQuizzes: Int

    /// A course with nothing required (no required lesson, no quiz) is never complete: there is
    /// no evidence to hold (the same rule as the national totals, `FactKeeper` in Store).
    public var isComplete: Bool {
        requiredLessons + quizzes > 0 && completedRequiredLessons == requiredLessons && passedQuizzes == quizzes
    }
    public var isEligible: Bool { isEnrolled && isComplete }

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
