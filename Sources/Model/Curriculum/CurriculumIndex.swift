/// What validation needs of the curriculum, held in memory so the merge path does no lookups.
/// The store reads it from its curriculum tables (`package`: the package's own modules only).
package struct CurriculumIndex: Sendable {
    package struct QuizInfo: Sendable {
        package var courseID: String
        package var maxScore: Int
        package var questions: Int

        package init(courseID: String, maxScore: Int, questions: Int) {
            self.courseID = courseID; self.maxScore = maxScore; self.questions = questions
        }
    }

    /// What completing a course takes (the rule in ``CourseStatus``).
    package struct CourseRule: Sendable {
        package var requiredLessons: Set<String> = []
        package var quizzes: [String] = []
        package var passPercent = 80

        package init() {}
    }

    package var courses: Set<String> = []
    package var lessons: Set<String> = []
    package var lessonCourse: [String: String] = [:]
    package var quizzes: [String: QuizInfo] = [:]
    package var rules: [String: CourseRule] = [:]
    package var communes: Set<Int> = []

    package init() {}
}
