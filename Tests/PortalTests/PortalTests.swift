import Foundation
import Model
@testable import Portal
import Release
import Store
import Testing
import TestSupport
import WebSupport

/// The portal over a real socket: every route, who may use it, and what reaches the store.
@Suite(.serialized) struct PortalHTTPTests {
    @Test func learnerSignsInSeesOnlyTheirCoursesAndTakesAQuizGradedOnTheSite() async throws {
        let f = try await PortalFixture()
        defer { Task { await f.stop() } }
        #expect(try await f.signIn(code: f.alice.code, secret: "000000") == nil)
        let session = try #require(try await f.signIn(code: f.alice.code))
        let cookies = ["hocvu_portal": session]

        let list = try await f.client.get("/learn", cookies: cookies)
        #expect(list.status == 200)
        #expect(list.text.contains("data-course=\"ksn-101\"") && list.text.contains("data-course=\"attt-101\""))
        #expect(!list.text.contains("data-course=\"ai-qh\""), "a course targeted at deputies is not offered to a civil servant")
        #expect(list.header("cache-control") == "no-store")
        #expect(!list.text.contains("<title>Nguyễn"), "no personal data in the title")
        #expect(try await f.client.get("/learn/course/ai-qh", cookies: cookies).status == 404)

        // The quiz page carries no answer key: the choices' values are plain indices for every question.
        let quiz = try await f.client.get("/learn/quiz/ksn-101-quiz", cookies: cookies)
        #expect(quiz.status == 200)
        #expect(!quiz.text.contains("answer") && !quiz.text.contains("checked"))
        let nonce = try #require(PortalFixture.hidden("nonce", in: quiz.text))
        let csrf = try #require(PortalFixture.csrf(in: quiz.text))
        var form = [("csrf", csrf), ("nonce", nonce), ("started", "0")]
        for (i, a) in [1, 2, 3, 0, 0].enumerated() { form.append(("q-ksn-101-quiz-q\(i + 1)", "\(a)")) }
        let graded = try await f.client.post("/learn/quiz/ksn-101-quiz", form: form, cookies: cookies)
        #expect(graded.status == 200)
        #expect(graded.text.contains("data-value=\"8\" data-max=\"10\""), "four right answers of two points each")
        // The same form sent twice is one attempt.
        let again = try await f.client.post("/learn/quiz/ksn-101-quiz", form: form, cookies: cookies)
        #expect(again.status == 200 && again.text.contains("data-value=\"8\""))
        #expect(try f.attempts(f.alice.id) == 1)
        #expect(try f.store.learnerProgress(f.alice.id).bestScores["ksn-101-quiz"]?.score == 8)
        #expect(try f.store.learnerProgress(f.alice.id).enrolled.contains("ksn-101"), "taking a quiz enrolls")
        // Without the form's CSRF token nothing is recorded.
        let forged = try await f.client.post("/learn/quiz/ksn-101-quiz", form: form.map { $0.0 == "csrf" ? ("csrf", String(repeating: "0", count: 64)) : $0 }.map { $0.0 == "nonce" ? ("nonce", String(repeating: "a", count: 64)) : $0 }, cookies: cookies)
        #expect(forged.status == 403)
        #expect(try f.attempts(f.alice.id) == 1)
        // Bob sees none of Alice's results.
        let bob = try #require(try await f.signIn(code: f.bob.code))
        let bobsPage = try await f.client.get("/learn/me", cookies: ["hocvu_portal": bob])
        #expect(bobsPage.status == 200 && !bobsPage.text.contains("data-quiz=\"ksn-101-quiz\""))
        #expect(try await f.client.get("/learn/me", cookies: cookies).text.contains("data-quiz=\"ksn-101-quiz\" data-value=\"8\""))
    }

    @Test func lessonsRecordProgressAndCompletingEverythingIssuesTheCertificate() async throws {
        let f = try await PortalFixture()
        defer { Task { await f.stop() } }
        let cookies = ["hocvu_portal": try #require(try await f.signIn(code: f.alice.code))]
        let page = try await f.client.get("/learn/lesson/ksn-101-l1", cookies: cookies)
        #expect(page.status == 200)
        #expect(page.text.contains("\"/media/ksn-101-l1/1\""), "the lesson's second file (a .bin: a download link)")
        #expect(page.text.contains("<h2>Thiết bị và Internet</h2>"), "the lesson's Markdown is rendered, escaped")
        #expect(try f.store.learnerProgress(f.alice.id).lessons["ksn-101-l1"] == 50, "opening a lesson records it as started")
        let csrf = try #require(PortalFixture.csrf(in: page.text))
        #expect(try await f.client.post("/learn/lesson/ksn-101-l1/done", form: [("csrf", "x")], cookies: cookies).status == 403)
        for lesson in ["ksn-101-l1", "ksn-101-l2"] {
            let r = try await f.client.post("/learn/lesson/\(lesson)/done", form: [("csrf", csrf)], cookies: cookies)
            #expect(r.status == 303)
        }
        #expect(try f.store.learnerProgress(f.alice.id).lessons["ksn-101-l2"] == 100)
        #expect(try f.store.learnerProgress(f.alice.id).certificates["ksn-101"] == nil, "no certificate before the quiz is passed")
        let quiz = try await f.client.get("/learn/quiz/ksn-101-quiz", cookies: cookies)
        var form = [("csrf", csrf), ("nonce", try #require(PortalFixture.hidden("nonce", in: quiz.text)))]
        for (i, a) in PortalFixture.rightAnswers.enumerated() { form.append(("q-ksn-101-quiz-q\(i + 1)", "\(a)")) }
        let result = try await f.client.post("/learn/quiz/ksn-101-quiz", form: form, cookies: cookies)
        #expect(result.text.contains("id=\"certificate\""))
        #expect(try f.store.learnerProgress(f.alice.id).certificates["ksn-101"] != nil)
        #expect(try f.store.completedCourses(learnerID: f.alice.id).contains("ksn-101"), "the derived facts (national totals) agree")
        let me = try await f.client.get("/learn/me", cookies: cookies)
        #expect(me.text.contains("data-course=\"ksn-101\" data-complete=\"true\""), "the page's rule and the store's agree")
        #expect(me.text.contains("data-course=\"attt-101\" data-complete=\"false\""))
    }

    @Test func mediaIsServedWithRangeRequestsToThoseWhoMayOpenIt() async throws {
        let f = try await PortalFixture()
        defer { Task { await f.stop() } }
        let video = try f.videoBytes()
        #expect(try await f.client.get("/media/ksn-101-l1/1").status == 401)
        let cookies = ["hocvu_portal": try #require(try await f.signIn(code: f.alice.code))]
        let whole = try await f.client.get("/media/ksn-101-l1/1", cookies: cookies)
        #expect(whole.status == 200 && whole.body == video && whole.header("accept-ranges") == "bytes")
        // A seek far into the file, across a chunk boundary (chunks are ≥ 64 KiB).
        let from = video.count / 2 - 100_000, to = video.count / 2 + 300_000
        let part = try await f.client.send("GET", "/media/ksn-101-l1/1", cookies: cookies, headers: ["Range": "bytes=\(from)-\(to)"])
        #expect(part.status == 206)
        #expect(part.header("content-range") == "bytes \(from)-\(to)/\(video.count)")
        #expect(part.body == video[from...to])
        let tail = try await f.client.send("GET", "/media/ksn-101-l1/1", cookies: cookies, headers: ["Range": "bytes=-1000"])
        #expect(tail.status == 206 && tail.body == video.suffix(1000))
        let beyond = try await f.client.send("GET", "/media/ksn-101-l1/1", cookies: cookies, headers: ["Range": "bytes=\(video.count)-"])
        #expect(beyond.status == 416 && beyond.header("content-range") == "bytes */\(video.count)")
        #expect(try await f.client.get("/media/ksn-101-l1/7", cookies: cookies).status == 404)
        #expect(try await f.client.get("/media/ai-qh-l1/0", cookies: cookies).status == 404, "a lesson not offered to the learner")
    }

    @Test func lockoutAfterRepeatedWrongPINsAndCookiesAreHttpOnlySameSite() async throws {
        var policy = LockoutPolicy()
        policy.maxFailures = 3
        let f = try await PortalFixture(lockout: policy)
        defer { Task { await f.stop() } }
        let form = try await f.client.get("/sign-in")
        #expect(form.setCookieLine("hocvu_portal_csrf")?.contains("HttpOnly; SameSite=Strict") == true)
        for _ in 0..<3 { #expect(try await f.signIn(code: f.alice.code, secret: "999999") == nil) }
        #expect(try await f.signIn(code: f.alice.code) == nil, "locked: even the right PIN is refused")
        #expect(try await f.signIn(code: f.bob.code) != nil, "others are not locked")
        // The operator's reset of the PIN clears the lockout.
        _ = try f.store.setLearnerPIN(learnerID: f.alice.id, pinHash: try PortalFixture.hash("24680246"))
        #expect(try await f.signIn(code: f.alice.code, secret: "24680246") != nil)
    }

    @Test func operatorRegistersALearnerSetsAPinAndImportsAFile() async throws {
        let f = try await PortalFixture()
        defer { Task { await f.stop() } }
        // A learner's session is not an operator's.
        let learner = ["hocvu_portal": try #require(try await f.signIn(code: f.alice.code))]
        #expect(try await f.client.get("/operator", cookies: learner).status == 303)
        let cookies = ["hocvu_portal": try #require(try await f.signIn(code: "canbo", secret: PortalFixture.operatorPassword, operator: true))]
        let home = try await f.client.get("/operator", cookies: cookies)
        #expect(home.status == 200 && home.header("cache-control") == "no-store")
        #expect(home.text.contains("001270000001"), "the operator sees national IDs")
        #expect(home.text.contains("id=\"unacked\">3<"), "sync status from the engine")
        let csrf = try #require(PortalFixture.csrf(in: home.text))

        let bad = try await f.client.post("/operator/learners", form: [
            ("csrf", csrf), ("national_id", "12345"), ("full_name", "X"), ("role", "civil_servant"), ("unit", "UBND"), ("home_commune", "70"),
        ], cookies: cookies)
        #expect(bad.status == 422 && bad.text.contains("12 chữ số"))
        let unknownCommune = try await f.client.post("/operator/learners", form: [
            ("csrf", csrf), ("national_id", "001270000099"), ("full_name", "Lê Văn Mới"), ("role", "civil_servant"), ("unit", "UBND"), ("home_commune", "999999"),
        ], cookies: cookies)
        #expect(unknownCommune.status == 422, "the import's validator refuses an unknown commune")
        let ok = try await f.client.post("/operator/learners", form: [
            ("csrf", csrf), ("national_id", "001270000099"), ("full_name", "Lê Văn Mới"), ("role", "civil_servant"), ("unit", "UBND"), ("home_commune", "70"), ("pin", "112233"),
        ], cookies: cookies)
        #expect(ok.status == 200)
        let code = try #require(ok.text.range(of: "Mã học viên: ").map { String(ok.text[$0.upperBound...].prefix(8)) })
        #expect(try await f.signIn(code: code, secret: "112233") != nil)

        // An upload of JSON Lines, as multipart/form-data; a bad line is reported, the rest kept.
        let boundary = "----hocvu\(UInt32.random(in: 0...UInt32.max))"
        let lines = """
            {"type":"progress","national_id":"001270000002","lesson":"ksn-101-l2","percent":100,"at":"2026-03-01T09:30:00+07:00"}
            {"type":"progress","national_id":"12345","lesson":"ksn-101-l1","percent":140}

            """
        var body = "--\(boundary)\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n\(csrf)\r\n"
        body += "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"e.jsonl\"\r\nContent-Type: application/octet-stream\r\n\r\n\(lines)\r\n--\(boundary)--\r\n"
        let upload = try await f.client.send("POST", "/operator/import", cookies: cookies, headers: ["Content-Type": "multipart/form-data; boundary=\(boundary)"], body: Data(body.utf8))
        #expect(upload.status == 422)
        #expect(upload.text.contains("id=\"recorded\">1<") && upload.text.contains("id=\"refused\">1<"))
        #expect(try f.store.learnerProgress(f.bob.id).lessons["ksn-101-l2"] == 100)
        #expect(!upload.text.contains("001270000002"), "lines are reported by number, never echoed")
    }

    @Test func apiNeedsAnAppTokenHidesTheKeyAndWritesOncePerClientID() async throws {
        let f = try await PortalFixture()
        defer { Task { await f.stop() } }
        #expect(try await f.api("GET", "/api/v1/learners/\(f.alice.code)/courses", token: "").status == 401)
        #expect(try await f.api("GET", "/api/v1/learners/\(f.alice.code)/courses", token: String(repeating: "a", count: 64)).status == 401)
        // An app token is not an operator's session.
        #expect(try await f.api("GET", "/operator").status == 303)
        let courses = try await f.api("GET", "/api/v1/learners/\(f.alice.code)/courses")
        #expect(courses.status == 200 && courses.text.contains("\"id\":\"ksn-101\"") && !courses.text.contains("ai-qh"))
        #expect(!courses.text.contains("\"answer\""), "the answer key never leaves the site")
        #expect(try await f.api("GET", "/api/v1/learners/00000000/courses").status == 404)

        let lesson = try await f.api("GET", "/api/v1/learners/\(f.alice.code)/lessons/ksn-101-l1")
        #expect(lesson.status == 200 && lesson.text.contains("/files/1"))
        let file = try await f.api("GET", "/api/v1/learners/\(f.alice.code)/lessons/ksn-101-l1/files/1", headers: ["Range": "bytes=10-19"])
        let video = try f.videoBytes()
        #expect(file.status == 206 && file.body == video[10...19])

        let body = #"{"id":"a-1","quiz":"ksn-101-quiz","answers":[1,2,3,0,1]}"#
        let first = try await f.api("POST", "/api/v1/learners/\(f.alice.code)/attempts", json: body)
        #expect(first.status == 201 && first.text.contains("\"score\":10") && first.text.contains("\"replayed\":false"))
        let retry = try await f.api("POST", "/api/v1/learners/\(f.alice.code)/attempts", json: body)
        #expect(retry.status == 200 && retry.text.contains("\"replayed\":true"))
        #expect(try f.attempts(f.alice.id) == 1, "a retried POST never creates a second attempt")
        let conflicting = try await f.api("POST", "/api/v1/learners/\(f.alice.code)/attempts", json: #"{"id":"a-1","quiz":"ksn-101-quiz","answers":[0,0,0,0,0]}"#)
        #expect(conflicting.status == 409)
        #expect(try await f.api("POST", "/api/v1/learners/\(f.alice.code)/attempts", json: #"{"id":"a-2","quiz":"ksn-101-quiz","answers":[1]}"#).status == 422)
        #expect(try await f.api("POST", "/api/v1/learners/\(f.alice.code)/attempts", json: "{not json").status == 400)
        #expect(try await f.api("POST", "/api/v1/learners/\(f.alice.code)/attempts", json: #"{"id":"","quiz":"ksn-101-quiz","answers":[1,2,3,0,1]}"#).status == 422)
        #expect(try await f.api("POST", "/api/v1/learners/\(f.alice.code)/progress", json: #"{"id":"a b","lesson":"ksn-101-l1","percent":10}"#).status == 422)
        #expect(try await f.api("POST", "/api/v1/learners/\(f.alice.code)/attempts", json: body, headers: ["Content-Type": "text/plain"]).status == 415)
        #expect(try await f.api("POST", "/api/v1/learners/\(f.alice.code)/attempts", json: #"{"id":"a-3","quiz":"ai-qh-quiz","answers":[0,0,0]}"#).status == 404)

        let progress = try await f.api("POST", "/api/v1/learners/\(f.alice.code)/progress", json: #"{"id":"p-1","lesson":"ksn-101-l1","percent":100}"#)
        #expect(progress.status == 201)
        let status = try await f.api("GET", "/api/v1/learners/\(f.alice.code)/status")
        #expect(status.status == 200 && status.header("cache-control") == "no-store")
        #expect(status.text.contains("\"ksn-101-l1\":100") && status.text.contains("\"best_score\":10"))
        #expect(!status.text.contains("001270000001"), "no national ID in the API")
        // A withdrawn token is refused at once.
        try f.store.removePortalApp(name: "app-hoc")
        #expect(try await f.api("GET", "/api/v1/learners/\(f.alice.code)/status").status == 401)
    }

    @Test func certificatesAreIssuedInTheWriteThatEarnsThemAndARevocationStands() async throws {
        let f = try await PortalFixture(mediaBytes: 1 << 16)
        defer { Task { await f.stop() } }
        let code = f.alice.code
        for (i, lesson) in ["ksn-101-l1", "ksn-101-l2"].enumerated() {
            #expect(try await f.api("POST", "/api/v1/learners/\(code)/progress", json: #"{"id":"p\#(i)","lesson":"\#(lesson)","percent":100}"#).status == 201)
        }
        let body = #"{"id":"last","quiz":"ksn-101-quiz","answers":[1,2,3,0,1],"started_at":"2026-03-01T09:40:00+07:00"}"#
        let first = try await f.api("POST", "/api/v1/learners/\(code)/attempts", json: body)
        #expect(first.status == 201 && first.text.contains("\"certificate_issued\":true"))
        let retry = try await f.api("POST", "/api/v1/learners/\(code)/attempts", json: body)
        #expect(retry.status == 200 && retry.text.contains("\"certificate_issued\":true"), "a retry gets the first answer, whole")
        let otherStart = body.replacingOccurrences(of: "09:40", with: "09:41")
        #expect(try await f.api("POST", "/api/v1/learners/\(code)/attempts", json: otherStart).status == 409, "started_at is part of the request")
        #expect(try await f.api("POST", "/api/v1/learners/\(code)/attempts", json: #"{"id":"t","quiz":"ksn-101-quiz","answers":[1,2,3,0,1],"started_at":"yesterday"}"#).status == 422)

        let certificate = Identity.certificateID(learnerID: f.alice.id, courseID: "ksn-101")
        try f.store.record([.revokeCertificate(certificateID: certificate)])
        let again = try await f.api("POST", "/api/v1/learners/\(code)/attempts", json: #"{"id":"after","quiz":"ksn-101-quiz","answers":[1,2,3,0,1]}"#)
        #expect(again.status == 201 && again.text.contains("\"certificate_issued\":false"), "a revocation stands")
        #expect(try f.store.learnerProgress(f.alice.id).certificates["ksn-101"] == nil)
    }

    @Test func aResetPinEndsTheSessionsOpenedWithTheOldOne() async throws {
        let f = try await PortalFixture(mediaBytes: 1 << 16)
        defer { Task { await f.stop() } }
        let cookies = ["hocvu_portal": try #require(try await f.signIn(code: f.alice.code))]
        #expect(try await f.client.get("/learn", cookies: cookies).status == 200)
        _ = try f.store.setLearnerPIN(learnerID: f.alice.id, pinHash: try PortalFixture.hash("97531086"))
        #expect(try await f.client.get("/learn", cookies: cookies).status == 303, "the old session is over")
        let op = ["hocvu_portal": try #require(try await f.signIn(code: "canbo", secret: PortalFixture.operatorPassword, operator: true))]
        try f.store.removePortalOperator(name: "canbo")
        try f.store.addPortalOperator(name: "canbo", passwordHash: try PortalFixture.hash("một mật khẩu mới 2026"))
        #expect(try await f.client.get("/operator", cookies: op).status == 303, "an account made again does not inherit old sessions")
    }

    @Test func mediaRevalidatesAndNeverSplicesTwoVersions() async throws {
        let f = try await PortalFixture()
        defer { Task { await f.stop() } }
        let cookies = ["hocvu_portal": try #require(try await f.signIn(code: f.alice.code))]
        let whole = try await f.client.get("/media/ksn-101-l1/1", cookies: cookies)
        let etag = try #require(whole.header("etag"))
        #expect(whole.header("cache-control") == "private, no-cache")
        #expect(try await f.client.send("GET", "/media/ksn-101-l1/1", cookies: cookies, headers: ["If-None-Match": etag]).status == 304)
        let same = try await f.client.send("GET", "/media/ksn-101-l1/1", cookies: cookies, headers: ["Range": "bytes=0-9", "If-Range": etag])
        #expect(same.status == 206)
        let other = try await f.client.send("GET", "/media/ksn-101-l1/1", cookies: cookies, headers: ["Range": "bytes=0-9", "If-Range": "\"another\""])
        #expect(other.status == 200 && other.body == whole.body)
        #expect(try await f.api("GET", "/api/v1/learners/\(f.alice.code)/status", headers: ["Authorization": "bearer \(f.appToken)"]).status == 200)
    }

    @Test func theServedOpenAPIDocumentIsTheCommittedOne() async throws {
        let f = try await PortalFixture(mediaBytes: 1 << 16)
        defer { Task { await f.stop() } }
        let served = try await f.client.get("/api/v1/openapi.json")
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let committed = try Data(contentsOf: root.appendingPathComponent("docs/api/openapi.json"))
        #expect(served.status == 200)
        #expect(served.body == committed, "run ops/generate-openapi.sh after editing docs/api/openapi.json")
    }
}

/// The pure parts, without sockets.
struct PortalUnitTests {
    @Test func rangeHeadersAreDecidedWithoutTrapping() {
        #expect(ByteRange.decide(nil, size: 100) == .whole)
        #expect(ByteRange.decide("bytes=0-9", size: 100) == .partial(.init(first: 0, last: 9)))
        #expect(ByteRange.decide("bytes=90-", size: 100) == .partial(.init(first: 90, last: 99)))
        #expect(ByteRange.decide("bytes=90-500", size: 100) == .partial(.init(first: 90, last: 99)))
        #expect(ByteRange.decide("bytes=-10", size: 100) == .partial(.init(first: 90, last: 99)))
        #expect(ByteRange.decide("bytes=-500", size: 100) == .partial(.init(first: 0, last: 99)))
        #expect(ByteRange.decide("bytes=100-", size: 100) == .unsatisfiable)
        #expect(ByteRange.decide("bytes=-0", size: 100) == .unsatisfiable)
        #expect(ByteRange.decide("bytes=5-1", size: 100) == .whole)
        #expect(ByteRange.decide("bytes=0-1,5-6", size: 100) == .whole)
        #expect(ByteRange.decide("items=0-1", size: 100) == .whole)
        #expect(ByteRange.decide("bytes=99999999999999999999999-", size: 100) == .whole)
        #expect(ByteRange.decide("bytes=-9223372036854775807", size: 100) == .whole)
        #expect(ByteRange.decide("bytes=x-", size: 100) == .whole)
    }

    @Test func piecesCoverTheRangeExactlyAcrossChunks() {
        let file = Manifest.File(path: "v", size: 30, chunks: [.init(hash: "a", size: 10), .init(hash: "b", size: 10), .init(hash: "c", size: 10)])
        let p = MediaResponder.pieces(of: file, in: ByteRange(first: 5, last: 24))
        #expect(p.map(\.hash) == ["a", "b", "c"])
        #expect(p.map(\.from) == [5, 0, 0] && p.map(\.to) == [10, 10, 5])
        #expect(MediaResponder.pieces(of: file, in: ByteRange(first: 10, last: 19)).map(\.hash) == ["b"])
    }

    @Test func quizzesAreGradedOnTheServerAndBadAnswersRefused() throws {
        let quiz = Curriculum.Quiz(id: "q", title: "Q", questions: [
            .init(id: "q1", prompt: "?", choices: ["a", "b"], answer: 1, points: 2),
            .init(id: "q2", prompt: "?", choices: ["a", "b", "c"], answer: 0, points: 3),
        ])
        #expect(try QuizGrading.grade(quiz, answers: [1, 0]).score == 5)
        #expect(try QuizGrading.grade(quiz, answers: [1, -1]).score == 2)
        #expect(try QuizGrading.grade(quiz, answers: [0, 2]).correct == [false, false])
        #expect(throws: QuizGrading.Refusal.wrongCount(expected: 2, got: 1)) { try QuizGrading.grade(quiz, answers: [1]) }
        #expect(throws: QuizGrading.Refusal.outOfRange(question: 1, choices: 3)) { try QuizGrading.grade(quiz, answers: [1, 3]) }
        #expect(throws: QuizGrading.Refusal.outOfRange(question: 0, choices: 2)) { try QuizGrading.grade(quiz, answers: [Int.min, 0]) }
    }

    @Test func lessonTextIsEscapedBeforeItIsFormatted() {
        let html = LessonText.html("# Tiêu đề\n\nĐoạn <script>alert(1)</script> **đậm**\n- một\n- hai")
        #expect(html.contains("<h2>Tiêu đề</h2>"))
        #expect(html.contains("&lt;script&gt;") && !html.contains("<script>"))
        #expect(html.contains("<strong>đậm</strong>") && html.contains("<li>một</li>"))
    }

    @Test func oneUserSigningInOverAndOverEvictsOnlyTheirOwnSessions() {
        let s = SessionStore(capacity: 100, perUser: 2)
        let other = s.create(user: "B", now: 1).token
        let first = s.create(user: "A", now: 2).token
        _ = s.create(user: "A", now: 3)
        _ = s.create(user: "A", now: 4)
        #expect(s.session(token: first, now: 5) == nil, "A's oldest session went")
        #expect(s.session(token: other, now: 5) != nil, "B's was never at risk")
        #expect(s.count == 3)
    }

    @Test func multipartPartsAreFoundAndMalformedBodiesRefused() {
        let body = "--XY\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XY\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\nline\r\n--XY--\r\n"
        let parsed = Multipart.parse(Data(body.utf8), contentType: "multipart/form-data; boundary=XY")
        #expect(parsed?["a"] == Data("1".utf8) && parsed?["file"] == Data("line".utf8))
        #expect(Multipart.parse(Data("--XY\r\nno end".utf8), contentType: "multipart/form-data; boundary=XY") == nil)
        // Parameters in any order and case: `filename` before `name`, a charset after the boundary.
        let reordered = "--XY\r\nContent-Disposition: form-data; filename=\"e.jsonl\"; name=\"file\"\r\n\r\nline\r\n--XY--\r\n"
        #expect(Multipart.parse(Data(reordered.utf8), contentType: "multipart/form-data; BOUNDARY=XY; charset=utf-8")?["file"] == Data("line".utf8))
        #expect(Multipart.parse(Data(body.utf8), contentType: "text/plain") == nil)
    }
}
