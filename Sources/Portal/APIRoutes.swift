import Foundation
import Logging
import Merge
import Hummingbird
import Model
import Release
import Store
import WebSupport

/// The learning-app API (JSON, `/api/v1`, described by ``OpenAPIDocument`` and docs/portal-api.md).
/// Each app authenticates with the bearer token the operator issued it (`hocvu site app add`);
/// learners are named by their portal code, never by a national ID. Writes carry a client-chosen
/// `id`: a retried POST returns the first answer and records nothing new.
extension PortalApp {
    static let maxJSONBytes = 64 * 1_024

    func registerAPIRoutes(on router: Router<BasicRequestContext>) {
        router.get("/api/v1/openapi.json") { _, _ in
            var h = Web.headers("application/json; charset=utf-8")
            h[.cacheControl] = "no-cache"
            return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.json + "\n")))
        }
        router.get("/api/v1/learners/:code/courses") { req, ctx in
            try self.api(req) { _ in
                let learner = try self.apiLearner(ctx)
                let release = try self.curriculum.current()
                return Self.json(.ok, APICourses(release: release?.manifest.version, courses: try self.learning.courses(for: learner).map(APICourse.init)))
            }
        }
        router.get("/api/v1/learners/:code/status") { req, ctx in
            try self.api(req) { _ in
                let learner = try self.apiLearner(ctx)
                let (states, progress) = try self.learning.states(learner)
                return Self.json(.ok, APIStatus(learner: learner, states: states, progress: progress))
            }
        }
        router.get("/api/v1/learners/:code/lessons/:lesson") { req, ctx in
            try self.api(req) { _ in
                let learner = try self.apiLearner(ctx)
                let (course, lesson, release) = try self.learning.lesson(Self.id(ctx.parameters.get("lesson")) ?? "", for: learner)
                return Self.json(.ok, APILesson(course: course.id, lesson: lesson, release: release, code: learner.code ?? ""))
            }
        }
        router.get("/api/v1/learners/:code/lessons/:lesson/files/:index") { req, ctx in
            try self.api(req) { _ in
                let learner = try self.apiLearner(ctx)
                let (_, lesson, release) = try self.learning.lesson(Self.id(ctx.parameters.get("lesson")) ?? "", for: learner)
                guard let i = ctx.parameters.get("index").flatMap({ Int($0) }), lesson.files.indices.contains(i),
                      let file = release.files[lesson.files[i]]
                else { throw APIError(.notFound, "no such file") }
                return self.media.respond(file, rangeHeader: req.headers[.range], ifRange: req.headers[.ifRange], ifNoneMatch: req.headers[.ifNoneMatch])
            }
        }
        router.post("/api/v1/learners/:code/progress") { req, ctx in
            try await self.apiWrite(req) { app, body in
                let learner = try self.apiLearner(ctx)
                let p = try Self.decode(APIProgressRequest.self, body)
                let (percent, replayed) = try self.learning.recordProgress(learner, lesson: p.lesson, percent: p.percent, client: "app:\(app)", clientID: p.id)
                return Self.json(replayed ? .ok : .created, APIProgressResult(id: p.id, lesson: p.lesson, percent: percent, replayed: replayed))
            }
        }
        router.post("/api/v1/learners/:code/attempts") { req, ctx in
            try await self.apiWrite(req) { app, body in
                let learner = try self.apiLearner(ctx)
                let a = try Self.decode(APIAttemptRequest.self, body)
                guard a.answers.count <= 1_000 else { throw APIError(.unprocessableContent, "too many answers") }
                var started: Int64?
                if let text = a.started_at {
                    guard let t = Self.parseTime(text) else { throw APIError(.unprocessableContent, "started_at must be an RFC 3339 time, e.g. 2026-03-01T09:40:00+07:00") }
                    started = t
                }
                let (r, replayed) = try self.learning.submitAttempt(learner, quiz: a.quiz, answers: a.answers, startedAt: started, client: "app:\(app)", clientID: a.id)
                return Self.json(replayed ? .ok : .created, APIAttemptResult(id: a.id, result: r, replayed: replayed))
            }
        }
    }

    struct APIError: Error {
        let status: HTTPResponse.Status
        let message: String
        init(_ status: HTTPResponse.Status, _ message: String) { self.status = status; self.message = message }
    }

    /// Authenticates the app, runs `body`, and turns every refusal into a JSON error.
    func api(_ req: Request, _ body: (String) throws -> Response) throws -> Response {
        // The scheme name is case-insensitive (RFC 9110 §11.1).
        guard let header = req.headers[.authorization], header.lowercased().hasPrefix("bearer "),
              let app = try store.portalApp(token: String(header.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces))
        else {
            var r = Self.jsonError(.unauthorized, "send the token the operator issued (hocvu site app add NAME) as: Authorization: Bearer TOKEN")
            r.headers[.wwwAuthenticate] = "Bearer"
            return r
        }
        do { return try body(app) } catch let e as APIError {
            return Self.jsonError(e.status, e.message)
        } catch let r as Learning.Refusal {
            switch r {
            case .noRelease, .notOffered: return Self.jsonError(.notFound, r.description)
            case .invalid: return Self.jsonError(.unprocessableContent, r.description)
            case .idReused: return Self.jsonError(.conflict, r.description)
            }
        } catch let e as RecordValidationError {
            return Self.jsonError(.unprocessableContent, e.description)
        }
    }

    func apiWrite(_ req: Request, _ body: @escaping (String, Data) throws -> Response) async throws -> Response {
        guard (req.headers[.contentType] ?? "").lowercased().hasPrefix("application/json") else {
            // Authenticate first so an unknown client learns nothing else.
            return try api(req) { _ in Self.jsonError(.unsupportedMediaType, "send Content-Type: application/json") }
        }
        let bytes: ByteBuffer
        do { bytes = try await req.body.collect(upTo: Self.maxJSONBytes) } catch {
            return try api(req) { _ in Self.jsonError(.contentTooLarge, "the body is over \(Self.maxJSONBytes) bytes") }
        }
        return try api(req) { app in try body(app, Data(bytes.readableBytesView)) }
    }

    func apiLearner(_ ctx: BasicRequestContext) throws -> PortalLearner {
        guard let code = Self.id(ctx.parameters.get("code")), let learner = try store.portalLearner(code: code) else {
            throw APIError(.notFound, "no learner with that code at this site")
        }
        return learner
    }

    static func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T {
        do { return try JSONDecoder().decode(type, from: data) } catch {
            throw APIError(.badRequest, "the body is not the JSON this endpoint takes (see /api/v1/openapi.json): \(Self.decodingProblem(error))")
        }
    }

    static func decodingProblem(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): "missing \"\(key.stringValue)\""
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
            "wrong type at \"\(c.codingPath.map(\.stringValue).joined(separator: "."))\""
        default: "malformed JSON"
        }
    }

    static func parseTime(_ s: String) -> Int64? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        if let d = f.date(from: s) { return Int64(d.timeIntervalSince1970 * 1_000) }
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: s).map { Int64($0.timeIntervalSince1970 * 1_000) }
    }

    static func json(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? enc.encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: Web.headers("application/json; charset=utf-8"), body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func jsonError(_ status: HTTPResponse.Status, _ message: String) -> Response { json(status, ["error": message]) }
}

// MARK: Wire shapes (the OpenAPI document's schemas)

struct APICourses: Encodable {
    let release: UInt64?
    let courses: [APICourse]
}

struct APICourse: Encodable {
    struct Lesson: Encodable { let id: String; let title: String; let required: Bool }
    struct Question: Encodable { let id: String; let prompt: String; let choices: [String]; let points: Int }
    struct Quiz: Encodable { let id: String; let title: String; let max_score: Int; let questions: [Question] }
    let id: String
    let title: String
    let area: String
    let pass_percent: Int
    let lessons: [Lesson]
    let quizzes: [Quiz]

    /// The course without its answer key.
    init(_ c: Curriculum.Course) {
        id = c.id; title = c.title; area = c.area; pass_percent = c.passPercent
        lessons = c.lessons.map { Lesson(id: $0.id, title: $0.title, required: $0.required) }
        quizzes = c.quizzes.map { q in
            Quiz(id: q.id, title: q.title, max_score: q.maxScore, questions: q.questions.map { Question(id: $0.id, prompt: $0.prompt, choices: $0.choices, points: $0.points) })
        }
    }
}

struct APILesson: Encodable {
    struct File: Encodable { let path: String; let size: Int; let content_type: String; let url: String }
    let course: String
    let id: String
    let title: String
    let required: Bool
    let files: [File]

    init(course: String, lesson: Curriculum.Lesson, release: InstalledCurriculum, code: String) {
        self.course = course; id = lesson.id; title = lesson.title; required = lesson.required
        files = lesson.files.enumerated().map { i, path in
            File(path: path, size: release.files[path]?.size ?? 0, content_type: MediaResponder.contentType(path),
                 url: "/api/v1/learners/\(code)/lessons/\(lesson.id)/files/\(i)")
        }
    }
}

struct APIStatus: Encodable {
    struct Score: Encodable { let quiz: String; let best_score: Int; let max_score: Int; let attempts: Int }
    struct Course: Encodable {
        let id: String; let title: String; let enrolled: Bool; let required_lessons: Int; let completed_required_lessons: Int
        let quizzes: Int; let passed_quizzes: Int; let complete: Bool; let certificate_issued_at: String?
    }
    let code: String
    let full_name: String
    let courses: [Course]
    let lessons: [String: Int]
    let scores: [Score]

    init(learner: PortalLearner, states: [Learning.CourseState], progress: LearnerProgress) {
        code = learner.code ?? ""; full_name = learner.fullName
        courses = states.map {
            Course(id: $0.course, title: $0.title, enrolled: $0.enrolled, required_lessons: $0.requiredLessons,
                   completed_required_lessons: $0.completedRequiredLessons, quizzes: $0.quizzes, passed_quizzes: $0.passedQuizzes,
                   complete: $0.complete, certificate_issued_at: $0.certificateIssuedAt.map(NodeStore.vietnamTime))
        }
        lessons = progress.lessons
        scores = progress.bestScores.values.sorted { $0.quizID < $1.quizID }.map {
            Score(quiz: $0.quizID, best_score: $0.score, max_score: $0.maxScore, attempts: progress.attempts[$0.quizID] ?? 0)
        }
    }
}

struct APIProgressRequest: Decodable {
    let id: String
    let lesson: String
    let percent: Int
}

struct APIProgressResult: Encodable {
    let id: String
    let lesson: String
    let percent: Int
    let replayed: Bool
}

struct APIAttemptRequest: Decodable {
    let id: String
    let quiz: String
    let answers: [Int]
    let started_at: String?
}

struct APIAttemptResult: Encodable {
    let id: String
    let attempt_id: String
    let quiz: String
    let score: Int
    let max_score: Int
    let passed: Bool
    let certificate_issued: Bool
    let replayed: Bool

    init(id: String, result r: Learning.AttemptResult, replayed: Bool) {
        self.id = id; attempt_id = r.attemptID; quiz = r.quiz; score = r.score; max_score = r.maxScore; passed = r.passed
        certificate_issued = r.certificateIssued; self.replayed = replayed
    }
}
