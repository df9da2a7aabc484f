/// What validation needs of the curriculum, held in memory so the merge path does no lookups.
struct CurriculumIndex: Sendable {
    struct QuizInfo: Sendable { var courseID: String; var maxScore: Int; var questions: Int }
    /// What completing a course takes (the rule in ``CourseStatus``).
    struct CourseRule: Sendable {
        var requiredLessons: Set<String> = []
        var quizzes: [String] = []
        var passPercent = 80
    }
    var courses: Set<String> = []
    var lessons: Set<String> = []
    var lessonCourse: [String: String] = [:]
    var quizzes: [String: QuizInfo] = [:]
    var rules: [String: CourseRule] = [:]
    var communes: Set<Int> = []
}
