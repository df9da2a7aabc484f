import Foundation
import Merge
import Model
import Store
import TestSupport
import Testing

@Suite("National report from totals kept in the merge transaction")
struct NationalReportTests {
    func completeCourse(_ s: NodeStore, _ id: String, at t: Int64) throws {
        try s.record([
            .enroll(learnerID: id, courseID: "ksn-101"),
            .progress(learnerID: id, lessonID: "ksn-101-l1", percent: 100, at: t),
            .progress(learnerID: id, lessonID: "ksn-101-l2", percent: 100, at: t),
            .attempt(learnerID: id, quizID: "ksn-101-quiz", answers: [0, 0, 0, 0, 0], score: 9, maxScore: 10,
                     startedAt: t - 1_000, finishedAt: t),
        ])
    }

    @Test("counts people per commune, province and nation; moves, certificates and revocations update them")
    func counts() throws {
        let r = try Replica()
        defer { r.dir.remove() }
        let s = r.store
        let t = r.clock.now
        let a = try s.register(1, commune: 70)        // Hà Nội (province 1)
        let b = try s.register(2, commune: 70)
        _ = try s.register(3, commune: 73)
        try completeCourse(s, a, at: t)
        try s.record([.issueCertificate(learnerID: a, courseID: "ksn-101"), .enroll(learnerID: b, courseID: "attt-101")])
        var report = try s.nationalReport()
        #expect(report.national.learners == 3 && report.national.enrolled == 2 && report.national.certified == 1)
        #expect(report.national.completedByCourse == ["ksn-101": 1])
        let c70 = try #require(report.communes.first { $0.code == 70 })
        #expect(c70.figures.learners == 2 && c70.figures.certified == 1)
        // No roster: no rate, and the learners are counted apart (the rate is of the roster).
        #expect(c70.figures.certifiedShare == 0 && c70.figures.offRoster == 2 && c70.figures.offRosterCertified == 1)
        #expect(c70.figures.status(of: NationalReport.targets[0]) == .noRoster)
        #expect(report.communes.count == 3_321)
        let hanoi = try #require(report.provinces.first { $0.code == 1 })
        #expect(hanoi.figures.learners == 3)

        // The same person registered again elsewhere is one learner, and the first home holds: a
        // home commune is set once (a later claim would let any site take a learner over).
        r.clock.advance(10)
        #expect(throws: RecordValidationError.homeCommuneFixed(current: 73)) { _ = try s.register(3, commune: 4) }
        #expect(throws: RecordValidationError.homeCommuneFixed(current: 70)) {
            try s.record([.updateLearner(learnerID: a, homeCommune: 73)])
        }
        _ = try s.register(3, commune: 73)  // registering again as it is changes nothing
        report = try s.nationalReport()
        #expect(report.national.learners == 3)
        #expect(report.communes.first { $0.code == 70 }?.figures.certified == 1)
        #expect(report.communes.first { $0.code == 70 }?.figures.learners == 2)
        #expect((report.communes.first { $0.code == 4 }?.figures.learners ?? 0) == 0)

        // Revocation never clears, and the learner stops counting as certified.
        try s.record([.revokeCertificate(certificateID: Identity.certificateID(learnerID: a, courseID: "ksn-101"))])
        #expect(try s.nationalReport().national.certified == 0)
    }

    @Test("enrolled sites never heard from are stale; heard ones are not")
    func staleness() throws {
        let r = try Replica()
        defer { r.dir.remove() }
        try r.store.enroll(communeCode: 70, identityKey: Data(repeating: 1, count: 32), transportKey: Data(repeating: 2, count: 32))
        try r.store.enroll(communeCode: 73, identityKey: Data(repeating: 3, count: 32), transportKey: Data(repeating: 4, count: 32))
        try r.store.markHeard([73])
        let report = try r.store.nationalReport(staleAfter: StaleWindow(.seconds(3_600)))
        #expect(report.communes.first { $0.code == 70 }?.stale == true)
        #expect(report.communes.first { $0.code == 73 }?.stale == false)
        #expect(report.provinces.first { $0.code == 1 }?.staleSites == 1)
        r.clock.advance(2 * 3_600_000)
        #expect(try r.store.nationalReport(staleAfter: StaleWindow(.seconds(3_600))).communes.filter(\.stale).count == 2)
    }

    @Test("enrollment refuses unknown communes, short keys, and keys already in use")
    func enrollmentRules() throws {
        let r = try Replica()
        defer { r.dir.remove() }
        let k = Data(repeating: 9, count: 32)
        #expect(throws: EnrollmentError.unknownCommune(1)) { try r.store.enroll(communeCode: 1, identityKey: k, transportKey: k) }
        #expect(throws: EnrollmentError.badKey("identity key")) { try r.store.enroll(communeCode: 70, identityKey: Data(), transportKey: k) }
        try r.store.enroll(communeCode: 70, identityKey: k, transportKey: Data(repeating: 8, count: 32))
        #expect(throws: EnrollmentError.alreadyEnrolled(70)) { try r.store.enroll(communeCode: 70, identityKey: k, transportKey: k) }
        #expect(throws: EnrollmentError.keyInUse) {
            try r.store.enroll(communeCode: 73, identityKey: k, transportKey: Data(repeating: 7, count: 32))
        }
        try r.store.revoke(communeCode: 70)
        #expect(try r.store.enrollments().first?.isRevoked == true)
        #expect(throws: EnrollmentError.notEnrolled(4)) { try r.store.revoke(communeCode: 4) }
    }
}
