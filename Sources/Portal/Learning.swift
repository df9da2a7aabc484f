import Foundation
import Logging
import Merge
import Model
import Release
import Store

/// What a learner may do and has done, shared by the learner's pages and the learning-app API so
/// both apply the same rules: which courses the installed release offers them, which lessons and
/// quizzes they may open, and how progress and attempts are recorded (through `NodeStore.record`,
/// once per client-chosen id).
struct Learning: Sendable {
    let store: NodeStore
    let curriculum: CurriculumCache

    /// Where a learner stands in one course.
    struct CourseState: Codable, Equatable, Sendable {
        let course: String
        let title: String
        let enrolled: Bool
        let requiredLessons: Int
        let completedRequiredLessons: Int
        let quizzes: Int
        let passedQuizzes: Int
        let complete: Bool
        /// Milliseconds since the epoch, when a certificate is issued.
        let certificateIssuedAt: Int64?
    }

    struct AttemptResult: Codable, Equatable, Sendable {
        let attemptID: String
        let quiz: String
        let score: Int
        let maxScore: Int
        let passed: Bool
        let correct: [Bool]
        let certificateIssued: Bool
    }

    enum Refusal: Error, Equatable, CustomStringConvertible {
        case noRelease
        case notOffered(String)
        case invalid(String)
        case idReused(String)

        var description: String {
            switch self {
            case .noRelease: "no curriculum release is installed at this site yet"
            case .notOffered(let id): "\(id) is not in a course offered to this learner"
            case .invalid(let why): why
            case .idReused(let id): PortalError.idReused(id).description
            }
        }
    }

    /// The installed release's courses targeted at the learner's role and province.
    func courses(for learner: PortalLearner) throws -> [Curriculum.Course] {
        guard let c = try curriculum.current(), let role = learner.role else { return [] }
        return c.manifest.curriculum.courses(for: role, province: province(of: learner))
    }

    private func province(of learner: PortalLearner) -> Int? { learner.homeCommune.flatMap { curriculum.provinces[$0] } }

    func lesson(_ id: String, for learner: PortalLearner) throws -> (course: Curriculum.Course, lesson: Curriculum.Lesson, release: InstalledCurriculum) {
        let release = try installed()
        guard let hit = release.lessons[id], offered(hit.course, to: learner) else { throw Refusal.notOffered(id) }
        return (hit.course, hit.lesson, release)
    }

    func quiz(_ id: String, for learner: PortalLearner) throws -> (course: Curriculum.Course, quiz: Curriculum.Quiz) {
        let release = try installed()
        guard let hit = release.quizzes[id], offered(hit.course, to: learner) else { throw Refusal.notOffered(id) }
        return (hit.course, hit.quiz)
    }

    func course(_ id: String, for learner: PortalLearner) throws -> Curriculum.Course {
        guard let c = try installed().course(id), offered(c, to: learner) else { throw Refusal.notOffered(id) }
        return c
    }

    /// The installed release; a store that cannot be read is the server's fault (500), not the caller's.
    private func installed() throws -> InstalledCurriculum {
        guard let c = try curriculum.current() else { throw Refusal.noRelease }
        return c
    }

    private func offered(_ course: Curriculum.Course, to learner: PortalLearner) -> Bool {
        learner.role.map { course.targets(role: $0, province: province(of: learner)) } ?? false
    }

    /// Records progress in a lesson, enrolling the learner in its course first. Progress only
    /// rises: a lower or equal percent records nothing (and is no error).
    func recordProgress(
        _ learner: PortalLearner, lesson id: String, percent: Int, client: String, clientID: String
    ) throws -> (percent: Int, replayed: Bool) {
        guard (0...100).contains(percent) else { throw Refusal.invalid("percent must be 0…100") }
        let (course, lesson, _) = try lesson(id, for: learner)
        let current = try store.learnerProgress(learner.learnerID).lessons[lesson.id] ?? -1
        var events: [LocalEvent] = [.enroll(learnerID: learner.learnerID, courseID: course.id)]
        if percent > current {
            events.append(.progress(learnerID: learner.learnerID, lessonID: lesson.id, percent: percent, at: store.now()))
        }
        let request = Data("progress\0\(learner.learnerID)\0\(lesson.id)\0\(percent)".utf8)
        let done = try once(client: client, clientID: clientID, request: request, events: events, certify: course.id, learner: learner) { _ in
            "\(max(percent, current))"
        }
        return (Int(done.response) ?? percent, done.replayed)
    }

    /// Grades and records a quiz attempt (enrolling the learner in its course first) and issues
    /// the course certificate if this attempt completes it.
    /// - Parameter startedAt: when the learner opened the quiz, as sent (nil: not sent; now). It is
    ///   part of the request: the same id with another start time is another request, refused.
    func submitAttempt(
        _ learner: PortalLearner, quiz id: String, answers: [Int], startedAt sent: Int64?, client: String, clientID: String
    ) throws -> (result: AttemptResult, replayed: Bool) {
        let (course, quiz) = try quiz(id, for: learner)
        let graded: QuizGrading.Graded
        do { graded = try QuizGrading.grade(quiz, answers: answers) } catch { throw Refusal.invalid(error.description) }
        let finished = store.now()
        let started = min(max(sent ?? finished, finished - 24 * 3_600_000), finished)
        let attemptID = EventImport.attemptID(
            learnerID: learner.learnerID, quizID: quiz.id, answers: answers, score: graded.score, maxScore: graded.maxScore,
            startedAt: started, finishedAt: finished)
        let events: [LocalEvent] = [
            .enroll(learnerID: learner.learnerID, courseID: course.id),
            .attemptWithID(
                attemptID: attemptID, learnerID: learner.learnerID, quizID: quiz.id, answers: answers, score: graded.score,
                maxScore: graded.maxScore, startedAt: started, finishedAt: finished),
        ]
        let passed = CompletionRule.isPassed(best: graded.score, maxScore: graded.maxScore, passPercent: course.passPercent)
        let request = Data("attempt\0\(learner.learnerID)\0\(quiz.id)\0\(answers.map(String.init).joined(separator: ","))\0\(sent.map(String.init) ?? "-")".utf8)
        let done = try once(client: client, clientID: clientID, request: request, events: events, certify: course.id, learner: learner) { outcomes in
            let issued = outcomes.contains { if case .certificate = $0 { true } else { false } }
            let r = AttemptResult(
                attemptID: attemptID, quiz: quiz.id, score: graded.score, maxScore: graded.maxScore, passed: passed,
                correct: graded.correct, certificateIssued: issued)
            return String(decoding: try JSONEncoder().encode(r), as: UTF8.self)
        }
        let result = try JSONDecoder().decode(AttemptResult.self, from: Data(done.response.utf8))
        return (result, done.replayed)
    }

    private func once(
        client: String, clientID: String, request: Data, events: [LocalEvent], certify course: String, learner: PortalLearner,
        respond: ([LocalOutcome]) throws -> String
    ) throws -> (response: String, replayed: Bool) {
        guard PortalApp.id(clientID) != nil else {
            throw Refusal.invalid("id must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-' (one per write; reuse it only to retry)")
        }
        do {
            return try store.recordOnce(
                client: client, clientID: clientID, request: request, events: events, certify: (learner.learnerID, course), respond: respond)
        } catch PortalError.idReused(let id) {
            throw Refusal.idReused(id)
        }
    }

    /// Where the learner stands in every course offered to them: one read of their facts, then the
    /// programme's one rule (``CompletionRule``) applied to them, as the derived facts apply it.
    func states(_ learner: PortalLearner) throws -> (courses: [CourseState], progress: LearnerProgress) {
        let progress = try store.learnerProgress(learner.learnerID)
        let states = try courses(for: learner).map { c in Self.state(of: c, progress) }
        return (states, progress)
    }

    static func state(of c: Curriculum.Course, _ p: LearnerProgress) -> CourseState {
        let required = Set(c.lessons.filter(\.required).map(\.id))
        let done = Set(p.lessons.filter { $0.value == 100 }.map(\.key))
        let passed = Set(c.quizzes.compactMap { q in
            p.bestScores[q.id].flatMap { CompletionRule.isPassed(best: $0.score, maxScore: $0.maxScore, passPercent: c.passPercent) ? q.id : nil }
        })
        let quizzes = c.quizzes.map(\.id)
        return CourseState(
            course: c.id, title: c.title, enrolled: p.enrolled.contains(c.id), requiredLessons: required.count,
            completedRequiredLessons: required.intersection(done).count, quizzes: quizzes.count, passedQuizzes: passed.count,
            complete: CompletionRule.isComplete(requiredLessons: required, quizzes: quizzes, completedLessons: done, passedQuizzes: passed),
            certificateIssuedAt: p.certificates[c.id])
    }
}
