import Foundation
import Logging
import Merge
import Hummingbird
import Model
import Release
import Store
import WebSupport

/// The learner's pages: course list, course, lesson (with its files), quiz, own progress; and the
/// release files themselves with Range requests.
extension PortalApp {
    var learning: Learning { Learning(store: store, curriculum: curriculum) }

    func registerLearnerRoutes(on router: Router<BasicRequestContext>) {
        router.get("/learn") { req, _ in
            try self.asLearner(req) { learner, csrf in
                let (states, _) = try self.learning.states(learner)
                let hasRelease = try self.curriculum.current() != nil
                return Self.page(PortalPages.courseList(learner, states: states, hasRelease: hasRelease, csrf: csrf))
            }
        }
        router.get("/learn/course/:course") { req, ctx in
            try self.asLearner(req) { learner, csrf in
                let course = try self.learning.course(Self.id(ctx.parameters.get("course")) ?? "", for: learner)
                let (states, progress) = try self.learning.states(learner)
                guard let state = states.first(where: { $0.course == course.id }) else { return Web.notFound() }
                return Self.page(PortalPages.course(course, state: state, progress: progress, learner: learner, csrf: csrf))
            }
        }
        router.get("/learn/lesson/:lesson") { req, ctx in
            try self.asLearner(req) { learner, csrf in
                let (course, lesson, release) = try self.learning.lesson(Self.id(ctx.parameters.get("lesson")) ?? "", for: learner)
                // Opening a lesson is progress: "started" (50 %), unless it is further along already
                // (checked first: a page view that changes nothing takes no write lock).
                var percent = try self.store.learnerProgress(learner.learnerID).lessons[lesson.id] ?? 0
                if percent < 50 {
                    percent = try self.learning.recordProgress(
                        learner, lesson: lesson.id, percent: 50, client: "learner:\(learner.learnerID)", clientID: Self.writeID("open", lesson.id)).percent
                }
                var texts = [Int: String]()
                for (i, path) in lesson.files.enumerated() where MediaResponder.kind(path) == .text {
                    if let f = release.files[path] { texts[i] = try self.curriculum.text(f, chunks: self.media.chunks) }
                }
                return Self.page(PortalPages.lesson(lesson, course: course, texts: texts, percent: percent, learner: learner, csrf: csrf))
            }
        }
        router.post("/learn/lesson/:lesson/done") { req, ctx in
            try await self.asLearnerForm(req) { learner, _, _ in
                let lesson = Self.id(ctx.parameters.get("lesson")) ?? ""
                _ = try self.learning.recordProgress(learner, lesson: lesson, percent: 100, client: "learner:\(learner.learnerID)", clientID: Self.writeID("done", lesson))
                let (course, _, _) = try self.learning.lesson(lesson, for: learner)
                return Web.redirect("/learn/course/\(course.id)")
            }
        }
        router.get("/learn/quiz/:quiz") { req, ctx in
            try self.asLearner(req) { learner, csrf in
                let (course, quiz) = try self.learning.quiz(Self.id(ctx.parameters.get("quiz")) ?? "", for: learner)
                let best = try self.store.learnerProgress(learner.learnerID).bestScores[quiz.id]
                // A fresh id per form: submitting the same form twice records one attempt.
                return Self.page(PortalPages.quiz(quiz, course: course, best: best, nonce: SessionStore.token(), startedAt: self.now(), learner: learner, csrf: csrf))
            }
        }
        router.post("/learn/quiz/:quiz") { req, ctx in
            try await self.asLearnerForm(req) { learner, csrf, form in
                let (course, quiz) = try self.learning.quiz(Self.id(ctx.parameters.get("quiz")) ?? "", for: learner)
                guard let nonce = form["nonce"], SessionStore.isTokenShaped(nonce) else { return self.badForm() }
                // A question left blank is -1; anything else must be a choice's index (checked in grading).
                let answers = quiz.questions.map { q in form["q-\(q.id)"].flatMap { Int($0) } ?? -1 }
                let started = form["started"].flatMap { Int64($0) }
                let (result, _) = try self.learning.submitAttempt(
                    learner, quiz: quiz.id, answers: answers, startedAt: started, client: "learner:\(learner.learnerID)", clientID: nonce)
                return Self.page(PortalPages.quizResult(quiz, course: course, result: result, learner: learner, csrf: csrf))
            }
        }
        router.get("/learn/me") { req, _ in
            try self.asLearner(req) { learner, csrf in
                let (states, progress) = try self.learning.states(learner)
                let release = try self.curriculum.current()
                return Self.page(PortalPages.me(learner, states: states, progress: progress, release: release, csrf: csrf))
            }
        }
        router.get("/media/:lesson/:index") { req, ctx in try self.mediaFile(req, ctx) }
        router.head("/media/:lesson/:index") { req, ctx in try self.mediaFile(req, ctx, head: true) }
    }

    /// A file of a lesson the signed-in learner may open (an operator may open every lesson's).
    func mediaFile(_ req: Request, _ ctx: BasicRequestContext, head: Bool = false) throws -> Response {
        guard let u = try user(req) else { return Web.text(.unauthorized, "sign in first: /sign-in") }
        guard let lessonID = Self.id(ctx.parameters.get("lesson")), let index = ctx.parameters.get("index").flatMap({ Int($0) }) else {
            return Web.notFound()
        }
        let found: (lesson: Curriculum.Lesson, release: InstalledCurriculum)
        switch u {
        case .learner(let learner, _, _):
            guard let hit = try? learning.lesson(lessonID, for: learner) else { return Web.notFound() }
            found = (hit.lesson, hit.release)
        case .operator:
            guard let release = try curriculum.current(), let hit = release.lessons[lessonID] else { return Web.notFound() }
            found = (hit.lesson, release)
        }
        guard found.lesson.files.indices.contains(index), let file = found.release.files[found.lesson.files[index]] else { return Web.notFound() }
        return media.respond(file, rangeHeader: req.headers[.range], ifRange: req.headers[.ifRange], ifNoneMatch: req.headers[.ifNoneMatch], head: head)
    }

    /// Runs `body` for a signed-in learner (else to sign-in); a refusal becomes a page saying why.
    func asLearner(_ req: Request, _ body: (PortalLearner, String) throws -> Response) throws -> Response {
        guard case .learner(let learner, let csrf, _) = try user(req) else { return Web.redirect("/sign-in") }
        do { return try body(learner, csrf) } catch let r as Learning.Refusal { return refusalPage(r) } catch let e as RecordValidationError {
            return refusalPage(.invalid(e.description))
        }
    }

    /// ``asLearner(_:_:)`` for a form post: the form is read and its CSRF token checked first.
    func asLearnerForm(_ req: Request, _ body: (PortalLearner, String, [String: String]) throws -> Response) async throws -> Response {
        guard case .learner(let learner, let csrf, _) = try user(req) else { return Web.redirect("/sign-in") }
        guard let form = try await Web.form(req), Web.tokensMatch(form["csrf"], csrf) else { return badForm() }
        do { return try body(learner, csrf, form) } catch let r as Learning.Refusal { return refusalPage(r) } catch let e as RecordValidationError {
            return refusalPage(.invalid(e.description))
        }
    }

    func refusalPage(_ r: Learning.Refusal) -> Response {
        switch r {
        case .noRelease: Self.page(.notFound, PortalPages.message(title: "Chưa có nội dung", text: "Điểm học này chưa nhận được bộ học liệu. Vui lòng quay lại sau."))
        case .notOffered: Self.page(.notFound, PortalPages.message(title: "Không tìm thấy", text: "Không có bài học này trong các khóa học dành cho bạn."))
        case .invalid(let why), .idReused(let why): Self.page(.badRequest, PortalPages.message(title: "Không ghi nhận được", text: why))
        }
    }
}
