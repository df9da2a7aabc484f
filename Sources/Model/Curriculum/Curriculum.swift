public import Merge

/// The curriculum as a release describes it: framework areas → courses → lessons, and quizzes
/// with questions; each course targets roles and provinces (empty = everyone).
public struct Curriculum: Codable, Hashable, Sendable {
    public struct Area: Codable, Hashable, Sendable {
        public var id: String
        public var title: String
        public init(id: String, title: String) { self.id = id; self.title = title }
    }

    public struct Lesson: Codable, Hashable, Sendable {
        public var id: String
        public var title: String
        public var required: Bool
        /// Files of the release this lesson shows (paths inside the release).
        public var files: [String]
        public init(id: String, title: String, required: Bool = true, files: [String] = []) {
            self.id = id; self.title = title; self.required = required; self.files = files
        }
    }

    public struct Question: Codable, Hashable, Sendable {
        public var id: String
        public var prompt: String
        public var choices: [String]
        public var answer: Int
        public var points: Int
        public init(id: String, prompt: String, choices: [String], answer: Int, points: Int = 1) {
            self.id = id; self.prompt = prompt; self.choices = choices; self.answer = answer; self.points = points
        }
    }

    public struct Quiz: Codable, Hashable, Sendable {
        public var id: String
        public var title: String
        public var questions: [Question]
        public init(id: String, title: String, questions: [Question]) {
            self.id = id; self.title = title; self.questions = questions
        }
        public var maxScore: Int { questions.reduce(0) { $0 + $1.points } }
    }

    public struct Course: Codable, Hashable, Sendable {
        public var id: String
        public var area: String
        public var title: String
        /// Percent of a quiz's maximum a learner must reach for the course to count complete.
        public var passPercent: Int
        public var roles: [Role]
        public var provinces: [Int]
        public var lessons: [Lesson]
        public var quizzes: [Quiz]
        public init(
            id: String, area: String, title: String, passPercent: Int = 80, roles: [Role] = [], provinces: [Int] = [],
            lessons: [Lesson], quizzes: [Quiz] = []
        ) {
            self.id = id; self.area = area; self.title = title; self.passPercent = passPercent
            self.roles = roles; self.provinces = provinces; self.lessons = lessons; self.quizzes = quizzes
        }
    }

    public var version: UInt64
    public var areas: [Area]
    public var courses: [Course]

    public init(version: UInt64, areas: [Area], courses: [Course]) {
        self.version = version; self.areas = areas; self.courses = courses
    }
}
