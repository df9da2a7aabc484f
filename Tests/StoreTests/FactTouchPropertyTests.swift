import Merge
import Model
import Store
import TestSupport
import Testing

/// Applying remote changes recomputes a learner's facts only when the change can move one
/// (`FactKeeper.touch`: a progress without a completion time, an attempt that is not a new passing
/// best, or a record that changed nothing is skipped). Applied one change per transaction, so no
/// other change of the same learner hides a wrong skip, the facts must equal those of the site that
/// wrote the history (it recomputes on every local write) and those of a rebuild from scratch.
@Suite("Facts skipped for changes that cannot move them equal a full recomputation")
struct FactTouchPropertyTests {

    @Test("one change per transaction: the receiver's facts equal the writer's and a rebuild", arguments: 0..<12)
    func skipsAreExact(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed &* 104_729 &+ 3)
        let clock = TestClock()
        let site = try Replica(clock: clock), hub = try Replica(clock: clock)
        defer { site.dir.remove(); hub.dir.remove() }
        // Three people who register first, then a history dense enough that courses complete and
        // certificates are issued, with the piece that completes a course coming last in any order.
        for person in 0..<3 {
            _ = try site.store.record([.registerLearner(
                nationalID: nationalID(person), fullName: "An", role: Role.allCases.pick(using: &rng)!, unit: "UBND",
                homeCommune: SampleCurriculum.communes.pick(using: &rng)!)])
        }
        for _ in 0..<120 {
            let id = Identity.learnerID(nationalID: nationalID(Int.random(in: 0..<3, using: &rng)))
            let t = clock.now
            let event: LocalEvent
            switch Int.random(in: 0..<10, using: &rng) {
            case 0, 1, 2:
                event = .progress(
                    learnerID: id, lessonID: ["ksn-101-l1", "ksn-101-l2", "ksn-101-l3", "attt-101-l1"].pick(using: &rng)!,
                    percent: [30, 100].pick(using: &rng)!, at: t - Int64.random(in: 0...100_000, using: &rng))
            case 3, 4, 5:
                event = .attempt(
                    learnerID: id, quizID: "ksn-101-quiz", answers: (0..<5).map { _ in Int.random(in: 0...3, using: &rng) },
                    score: Int.random(in: 0...10, using: &rng), maxScore: 10, startedAt: t - 60_000, finishedAt: t)
            case 6: event = .enroll(learnerID: id, courseID: "ksn-101")
            case 7: event = .withdraw(learnerID: id, courseID: "ksn-101")
            default: event = .issueCertificate(learnerID: id, courseID: "ksn-101")
            }
            _ = try? site.store.record([event])
            clock.advance(Int64.random(in: 1...3, using: &rng))
        }
        try site.store.sealPending(maxChanges: 1)
        // After every change, the completions the facts hold equal those computed from the rows by
        // the SQL behind certificates (CourseStatus), so a wrong skip cannot be healed by a later
        // change of the same learner.
        let people = (0..<3).map { Identity.learnerID(nationalID: nationalID($0)) }
        for batch in try site.store.batches(after: VersionVector()) {
            let report = try hub.store.apply([batch])
            #expect(report.refused.isEmpty && report.quarantinedChanges == 0 && report.mergedChanges == 1)
            for person in people {
                let fromRows = try Set(["ksn-101", "attt-101", "ai-qh"].filter {
                    try hub.store.courseStatus(learnerID: person, courseID: $0).isComplete
                })
                #expect(try hub.store.completedCourses(learnerID: person) == fromRows,
                        "facts differ from the rows after seq \(batch.firstSeq) (seed \(seed))")
            }
        }
        #expect(try hub.store.stateDigest() == site.store.stateDigest())

        let written = try people.map { try site.store.completedCourses(learnerID: $0) }
        let kept = try people.map { try hub.store.completedCourses(learnerID: $0) }
        #expect(kept == written, "completions differ from the writer's (seed \(seed))")
        #expect(written.contains { !$0.isEmpty }, "no course completed: the history proves nothing (seed \(seed))")
        let writerReport = try site.store.nationalReport(), keptReport = try hub.store.nationalReport()
        #expect(keptReport.national == writerReport.national && keptReport.communes == writerReport.communes,
                "totals differ from the writer's (seed \(seed))")

        try hub.store.wipeFactsAsAnInterruptedMigrationForTests()
        let rebuilt = try hub.reopen()
        #expect(try people.map { try rebuilt.completedCourses(learnerID: $0) } == kept,
                "completions differ from a rebuild (seed \(seed))")
        let rebuiltReport = try rebuilt.nationalReport()
        #expect(rebuiltReport.national == keptReport.national && rebuiltReport.communes == keptReport.communes,
                "totals differ from a rebuild (seed \(seed))")
    }
}
