import Foundation
import Merge
import Model
import Store
import TestSupport
import Testing

@Suite("Derived facts: completion, best score, certificate eligibility")
struct DerivedFactsTests {
    @Test("a course completes when required lessons are done and every quiz reaches 80%; then a certificate can be issued and revoked")
    func completionAndCertificate() throws {
        let r = try Replica()
        defer { r.dir.remove() }
        let s = r.store
        let id = try s.register(1)
        let t = r.clock.now
        try s.record([.enroll(learnerID: id, courseID: "ksn-101")])
        try s.record([
            .progress(learnerID: id, lessonID: "ksn-101-l1", percent: 100, at: t),
            .progress(learnerID: id, lessonID: "ksn-101-l2", percent: 100, at: t),
            .attempt(learnerID: id, quizID: "ksn-101-quiz", answers: [0, 0, 0, 0, 0], score: 6, maxScore: 10,
                     startedAt: t - 60_000, finishedAt: t),
        ])
        var status = try s.courseStatus(learnerID: id, courseID: "ksn-101")
        #expect(status.completedRequiredLessons == 2 && status.requiredLessons == 2)  // the optional lesson is not required
        #expect(!status.isComplete && status.passedQuizzes == 0)
        try s.record([.attempt(learnerID: id, quizID: "ksn-101-quiz", answers: [1, 2, 3, 0, 1], score: 8, maxScore: 10,
                               startedAt: t - 30_000, finishedAt: t)])
        status = try s.courseStatus(learnerID: id, courseID: "ksn-101")
        #expect(status.isComplete && status.isEligible)
        #expect(try s.bestScores(learnerID: id) == [BestScore(quizID: "ksn-101-quiz", score: 8, maxScore: 10)])
        let out = try s.record([.issueCertificate(learnerID: id, courseID: "ksn-101")])
        guard case .certificate(let certID) = out[0] else { Issue.record("no certificate"); return }
        #expect(certID == Identity.certificateID(learnerID: id, courseID: "ksn-101"))
        try s.record([.revokeCertificate(certificateID: certID)])
        // Withdrawing removes eligibility (derived), not the revoked certificate (grow-only).
        try s.record([.withdraw(learnerID: id, courseID: "ksn-101")])
        #expect(try !s.courseStatus(learnerID: id, courseID: "ksn-101").isEligible)
    }

    @Test("progress only goes up locally too: a lower percent after a higher one keeps the higher")
    func progressMonotone() throws {
        let r = try Replica()
        defer { r.dir.remove() }
        let id = try r.store.register(1)
        let t = r.clock.now
        try r.store.record([.progress(learnerID: id, lessonID: "ksn-101-l1", percent: 100, at: t)])
        try r.store.record([.progress(learnerID: id, lessonID: "ksn-101-l1", percent: 20, at: t + 5)])
        #expect(try r.store.courseStatus(learnerID: id, courseID: "ksn-101").completedRequiredLessons == 1)
    }

    @Test("enrolling twice or withdrawing when not enrolled records nothing")
    func enrollmentNoOps() throws {
        let r = try Replica()
        defer { r.dir.remove() }
        let id = try r.store.register(1)
        try r.store.sealPending()
        let vv = try r.store.versionVector()
        try r.store.record([.withdraw(learnerID: id, courseID: "ksn-101")])
        try r.store.record([.enroll(learnerID: id, courseID: "ksn-101"), .enroll(learnerID: id, courseID: "ksn-101")])
        try r.store.sealPending()
        let batches = try r.store.batches(after: vv)
        #expect(try batches.flatMap { try ChangeCodec.decode($0.body) }.count == 1)
        #expect(try r.store.courseStatus(learnerID: id, courseID: "ksn-101").isEnrolled)
    }
}
