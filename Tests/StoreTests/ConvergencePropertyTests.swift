import Foundation
import Merge
import Model
import Sodium
import Store
import TestSupport
import Testing

/// Random local histories on 2–5 replicas, exchanged in random order with duplication, drops
/// and re-batching, must converge to one digest, equal to the reference model's.
@Suite("Replicas converge whatever the delivery order")
struct ConvergencePropertyTests {
    static let lessons = ["ksn-101-l1", "ksn-101-l2", "ksn-101-l3", "attt-101-l1", "attt-101-l2", "ai-qh-l1"]
    static let courses = ["ksn-101", "attt-101", "ai-qh"]
    static let quizzes = [("ksn-101-quiz", 5), ("attt-101-quiz", 4), ("ai-qh-quiz", 3)]

    /// One random local event on `replica`; invalid ones are allowed to fail (they must write nothing).
    static func randomEvent(_ r: Replica, _ rng: inout SeededGenerator) {
        let person = Int.random(in: 0..<6, using: &rng)
        let id = Identity.learnerID(nationalID: nationalID(person))
        let t = r.clock.now
        let event: LocalEvent
        switch Int.random(in: 0..<10, using: &rng) {
        case 0, 1:
            event = .registerLearner(
                nationalID: nationalID(person), fullName: ["An", "Bình", "Chi", "Dũng"].pick(using: &rng)!,
                role: Role.allCases.pick(using: &rng)!, unit: ["UBND", "HĐND"].pick(using: &rng)!,
                homeCommune: SampleCurriculum.communes.pick(using: &rng)!)
        case 2:
            event = .updateLearner(learnerID: id, unit: ["Văn phòng", "Tư pháp"].pick(using: &rng)!)
        case 3: event = .enroll(learnerID: id, courseID: courses.pick(using: &rng)!)
        case 4: event = .withdraw(learnerID: id, courseID: courses.pick(using: &rng)!)
        case 5, 6:
            event = .progress(
                learnerID: id, lessonID: lessons.pick(using: &rng)!,
                percent: [10, 50, 100, 100].pick(using: &rng)!, at: t - Int64.random(in: 0...100_000, using: &rng))
        case 7, 8:
            let (quiz, n) = quizzes.pick(using: &rng)!
            event = .attempt(
                learnerID: id, quizID: quiz, answers: (0..<n).map { _ in Int.random(in: 0...3, using: &rng) },
                score: Int.random(in: 0...(2 * n), using: &rng), maxScore: 2 * n, startedAt: t - 60_000, finishedAt: t)
        default:
            event = .issueCertificate(learnerID: id, courseID: courses.pick(using: &rng)!)
        }
        _ = try? r.store.record([event])
        r.clock.advance(Int64.random(in: 0...3, using: &rng))
    }

    @Test("random histories converge to the model's digest", arguments: 0..<40)
    func converge(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed &* 7919 &+ 1)
        let clock = TestClock()
        let replicas = try (0..<Int.random(in: 2...5, using: &rng)).map { _ in try Replica(clock: clock) }
        defer { replicas.forEach { $0.dir.remove() } }

        // Interleave local writes with partial, shuffled, duplicated, re-batched exchanges.
        for _ in 0..<Int.random(in: 4...8, using: &rng) {
            for r in replicas {
                for _ in 0..<Int.random(in: 0...12, using: &rng) { Self.randomEvent(r, &rng) }
                try r.store.sealPending(maxChanges: Int.random(in: 1...5, using: &rng))
            }
            let from = replicas.pick(using: &rng)!, to = replicas.pick(using: &rng)!
            var batches = try from.store.batches(after: VersionVector())
            batches.shuffle(using: &rng)
            batches = batches.filter { _ in Int.random(in: 0..<4, using: &rng) != 0 }  // drops make gaps
            batches += batches.prefix(Int.random(in: 0...batches.count, using: &rng))  // duplicates
            while !batches.isEmpty {
                let n = Int.random(in: 1...batches.count, using: &rng)
                let report = try to.store.apply(Array(batches.prefix(n)))
                // A batch beyond a gap is refused (resent in order by anti-entropy), never merged early.
                #expect(report.refused.allSatisfy { if case .outOfOrder = $0.reason { true } else { false } })
                #expect(report.quarantinedChanges == 0)
                batches.removeFirst(n)
            }
        }
        // Anti-entropy to a fixed point: everyone pulls what they lack from everyone.
        for _ in 0..<2 {
            for to in replicas {
                for from in replicas where from.store !== to.store {
                    _ = try to.store.apply(from.store.batches(after: to.store.versionVector()))
                }
            }
        }
        let digests = try Set(replicas.map { try $0.store.stateDigest() })
        #expect(digests.count == 1, "replicas diverged (seed \(seed))")
        #expect(Set(try replicas.map { try $0.store.versionVector() }).count == 1)

        // The reference model: fold every change of every batch through the pure joins.
        var model = ReplicaState()
        for b in try replicas[0].store.batches(after: VersionVector()) {
            for c in try ChangeCodec.decode(b.body) { model.apply(c, from: b.origin.node) }
        }
        #expect(digests.first == Blake2b.hash(model.canonicalBytes()), "store differs from the model (seed \(seed))")

        // Totals kept incrementally equal those of a store that received everything at once.
        let fresh = try Replica(clock: clock)
        defer { fresh.dir.remove() }
        _ = try fresh.store.apply(replicas[0].store.batches(after: VersionVector()))
        let expectedReport = try fresh.store.nationalReport()
        for r in replicas {
            let got = try r.store.nationalReport()
            #expect(got.national == expectedReport.national && got.communes == expectedReport.communes,
                    "incremental totals drifted (seed \(seed))")
        }

        // The facts kept incrementally (only for changes that can move one, FactKeeper.touch) equal
        // facts recomputed for every learner from scratch (a wipe, then the rebuild at the next open).
        let people = (0..<6).map { Identity.learnerID(nationalID: nationalID($0)) }
        let kept = try replicas[0].store.nationalReport()
        let keptCourses = try people.map { try replicas[0].store.completedCourses(learnerID: $0) }
        try replicas[0].store.wipeFactsAsAnInterruptedMigrationForTests()
        let rebuilt = try replicas[0].reopen()
        let fromScratch = try rebuilt.nationalReport()
        #expect(fromScratch.national == kept.national && fromScratch.communes == kept.communes,
                "incremental totals differ from a rebuild (seed \(seed))")
        #expect(try people.map { try rebuilt.completedCourses(learnerID: $0) } == keptCourses,
                "incremental completions differ from a rebuild (seed \(seed))")

        // Derived best scores, kept incrementally, equal a fresh computation over the model's attempts.
        var best = [String: [String: (Int, Int)]]()
        for case .value(let a) in model.attempts.values {
            let current = best[a.learnerID, default: [:]][a.quizID]
            if current.map({ a.score * $0.1 > $0.0 * a.maxScore }) ?? true {
                best[a.learnerID, default: [:]][a.quizID] = (a.score, a.maxScore)
            }
        }
        for r in replicas {
            for (learner, quizzes) in best {
                let expected = quizzes.map { BestScore(quizID: $0.key, score: $0.value.0, maxScore: $0.value.1) }
                    .sorted { $0.quizID < $1.quizID }
                #expect(try r.store.bestScores(learnerID: learner) == expected, "derived best score drifted (seed \(seed))")
            }
        }
    }
}
