import Foundation
import Merge
import Model
import Store
import TestSupport
import Testing

@Suite("Local writes are validated; an invalid event writes nothing")
struct ValidationTests {
    /// Records `[good events..., bad]` and checks the bad one throws `expected` and that the
    /// good ones in the same call were rolled back with it.
    func expectRefused(
        _ bad: LocalEvent, _ expected: RecordValidationError, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let r = try Replica()
        defer { r.dir.remove() }
        let id = try r.store.register(1)
        try r.store.record([.enroll(learnerID: id, courseID: "ksn-101")])
        try r.store.sealPending()
        let before = try r.store.stateDigest()
        let good = LocalEvent.progress(learnerID: id, lessonID: "ksn-101-l1", percent: 50, at: r.clock.now)
        #expect(throws: expected, sourceLocation: sourceLocation) { try r.store.record([good, bad]) }
        #expect(try r.store.stateDigest() == before, "a refused call left data behind", sourceLocation: sourceLocation)
        #expect(try r.store.sealPending() == 0, "a refused call left a change-log entry", sourceLocation: sourceLocation)
    }

    @Test("malformed national ID", arguments: ["12345", "00123456789a", "0012345678901", ""])
    func malformedNationalID(_ bad: String) throws {
        try expectRefused(
            .registerLearner(nationalID: bad, fullName: "A", role: .other, unit: "U", homeCommune: 70), .malformedNationalID)
    }

    @Test func unknownCommune() throws {
        try expectRefused(
            .registerLearner(nationalID: nationalID(2), fullName: "A", role: .other, unit: "U", homeCommune: 999_999),
            .unknownCommune(999_999))
    }

    @Test func badName() throws {
        try expectRefused(
            .registerLearner(nationalID: nationalID(2), fullName: "", role: .other, unit: "U", homeCommune: 70),
            .invalidText(field: "full name"))
        try expectRefused(
            .registerLearner(nationalID: nationalID(2), fullName: "A\u{7}B", role: .other, unit: "U", homeCommune: 70),
            .invalidText(field: "full name"))
    }

    @Test func unknownLearner() throws {
        try expectRefused(.enroll(learnerID: "nobody", courseID: "ksn-101"), .unknownLearner("nobody"))
    }

    @Test func unknownCourseAndLesson() throws {
        let id = Identity.learnerID(nationalID: nationalID(1))
        try expectRefused(.enroll(learnerID: id, courseID: "no-such-course"), .unknownCourse("no-such-course"))
        try expectRefused(
            .progress(learnerID: id, lessonID: "no-such-lesson", percent: 10, at: 0), .unknownLesson("no-such-lesson"))
    }

    @Test("progress outside 0–100", arguments: [-1, 101, 1_000])
    func percentOutOfRange(_ p: Int) throws {
        let id = Identity.learnerID(nationalID: nationalID(1))
        try expectRefused(.progress(learnerID: id, lessonID: "ksn-101-l1", percent: p, at: 0), .percentOutOfRange(p))
    }

    @Test("a score above its maximum, a wrong maximum, a wrong answer count, an unknown quiz")
    func scores() throws {
        let id = Identity.learnerID(nationalID: nationalID(1))
        let t: Int64 = 1_767_225_600_000
        try expectRefused(
            .attempt(learnerID: id, quizID: "ksn-101-quiz", answers: [0, 1, 2, 3, 0], score: 11, maxScore: 10,
                     startedAt: t - 1_000, finishedAt: t),
            .scoreOutOfRange(score: 11, maxScore: 10))
        try expectRefused(
            .attempt(learnerID: id, quizID: "ksn-101-quiz", answers: [0, 1, 2, 3, 0], score: 5, maxScore: 50,
                     startedAt: t - 1_000, finishedAt: t),
            .maxScoreMismatch(claimed: 50, quiz: 10))
        try expectRefused(
            .attempt(learnerID: id, quizID: "ksn-101-quiz", answers: [0], score: 5, maxScore: 10,
                     startedAt: t - 1_000, finishedAt: t),
            .answerCountMismatch(answers: 1, questions: 5))
        try expectRefused(
            .attempt(learnerID: id, quizID: "nope", answers: [], score: 0, maxScore: 1, startedAt: 0, finishedAt: 0),
            .unknownQuiz("nope"))
        try expectRefused(
            .attempt(learnerID: id, quizID: "ksn-101-quiz", answers: [0, 1, 2, 3, 0], score: 5, maxScore: 10,
                     startedAt: t, finishedAt: t - 1),
            .finishedBeforeStarted)
    }

    @Test("a date far in the future")
    func futureDate() throws {
        let id = Identity.learnerID(nationalID: nationalID(1))
        let t: Int64 = 1_767_225_600_000 + 3_600_000
        try expectRefused(
            .attempt(learnerID: id, quizID: "ksn-101-quiz", answers: [0, 1, 2, 3, 0], score: 5, maxScore: 10,
                     startedAt: t - 1_000, finishedAt: t),
            .dateInFuture(field: "attempt finish time", aheadSeconds: 3_600))
        try expectRefused(
            .progress(learnerID: id, lessonID: "ksn-101-l1", percent: 100, at: t),
            .dateInFuture(field: "completion time", aheadSeconds: 3_600))
    }

    @Test("a certificate for a course not completed is refused, naming what is missing")
    func notEligible() throws {
        let id = Identity.learnerID(nationalID: nationalID(1))
        try expectRefused(
            .issueCertificate(learnerID: id, courseID: "ksn-101"),
            .notEligible(courseID: "ksn-101", reason: "2 required lesson(s) not complete, 1 quiz(zes) not passed"))
        try expectRefused(
            .issueCertificate(learnerID: id, courseID: "attt-101"), .notEligible(courseID: "attt-101", reason: "not enrolled"))
    }

    @Test("the database refuses a national ID that is not 12 digits even past the API (CHECK constraint)")
    func checkConstraint() throws {
        let r = try Replica()
        defer { r.dir.remove() }
        let remote = RemoteSigner()
        // A forged remote learner whose id matches a bad national id: validation quarantines it.
        let bad = "12345"
        let change = Change(hlc: HLCTimestamp(milliseconds: 1, counter: 0), record: .learner(LearnerChange(
            learnerID: Identity.learnerID(nationalID: bad), nationalID: bad, fullName: "X")))
        let report = try r.store.apply([remote.batch([change])])
        #expect(report.quarantinedChanges == 1)
        #expect(try r.store.quarantine().first?.reasonCode == "malformed_national_id")
    }
}
