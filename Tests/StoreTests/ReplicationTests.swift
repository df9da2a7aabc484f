import Foundation
import Merge
import Model
import Sodium
import Store
import TestSupport
import Testing

@Suite("Applying remote batches")
struct ReplicationTests {
    @Test("a batch applied twice is a no-op the second time")
    func idempotent() throws {
        let a = try Replica(), b = try Replica()
        defer { a.dir.remove(); b.dir.remove() }
        let id = try a.store.register(1)
        try a.store.record([.enroll(learnerID: id, courseID: "ksn-101"),
                            .progress(learnerID: id, lessonID: "ksn-101-l1", percent: 60, at: a.clock.now)])
        try a.store.sealPending()
        let batches = try a.store.batches(after: VersionVector())
        let first = try b.store.apply(batches)
        #expect(first.appliedBatches == 1 && first.mergedChanges == 3)
        let digest = try b.store.stateDigest()
        #expect(digest == (try a.store.stateDigest()))
        let again = try b.store.apply(batches + batches)
        #expect(again.appliedBatches == 0 && again.duplicateBatches == 2 && again.mergedChanges == 0)
        #expect(try b.store.stateDigest() == digest)
        #expect(try b.store.versionVector() == a.store.versionVector())
    }

    @Test("one node's part of the version vector, read by index, is the whole vector restricted to it")
    func versionVectorOfNodes() throws {
        let hub = try Replica(), a = try Replica(), b = try Replica()
        defer { hub.dir.remove(); a.dir.remove(); b.dir.remove() }
        for (i, site) in [a, b].enumerated() {
            let id = try site.store.register(i + 1)
            try site.store.record([.enroll(learnerID: id, courseID: "ksn-101")])
            try site.store.sealPending()
            _ = try hub.store.apply(try site.store.batches(after: VersionVector()))
        }
        try a.store.rotateEpoch()  // a second epoch of the same node: both belong to its part
        try a.store.record([.enroll(learnerID: try a.store.register(3), courseID: "ksn-101")])
        try a.store.sealPending()
        _ = try hub.store.apply(try a.store.batches(after: hub.store.versionVector()))
        let all = try hub.store.versionVector()
        #expect(try hub.store.versionVector(of: [a.store.node]) == all.restricted(to: a.store.node))
        #expect(try hub.store.versionVector(of: [a.store.node]).entries.count == 2)
        #expect(try hub.store.versionVector(of: [a.store.node, b.store.node]) == all.restricted(to: a.store.node).merged(with: all.restricted(to: b.store.node)))
        #expect(try hub.store.versionVector(of: [NodeID(bytes: Data(repeating: 7, count: 32))!]) == VersionVector())
    }

    @Test("a well-formed but invalid record is quarantined and the rest of its batch applies")
    func quarantineDoesNotBlock() throws {
        let r = try Replica()
        defer { r.dir.remove() }
        let remote = RemoteSigner()
        let nid = nationalID(5)
        let lid = Identity.learnerID(nationalID: nid)
        let t = HLCTimestamp(milliseconds: UInt64(r.clock.now), counter: 0)
        let batch = remote.batch([
            Change(hlc: t, record: .learner(LearnerChange(learnerID: lid, nationalID: nid, fullName: "Lê Thị B", role: .other, unit: "UBND", homeCommune: 73))),
            Change(hlc: t, record: .progress(ProgressRecord(learnerID: lid, lessonID: "ksn-101-l1", percent: 140, completedAt: nil))),
            Change(hlc: t, record: .progress(ProgressRecord(learnerID: lid, lessonID: "ksn-101-l2", percent: 30, completedAt: nil))),
        ])
        let report = try r.store.apply([batch])
        #expect(report.appliedBatches == 1 && report.mergedChanges == 2 && report.quarantinedChanges == 1)
        let q = try r.store.quarantine()
        #expect(q.count == 1 && q[0].reasonCode == "percent_out_of_range" && q[0].seq == 2 && q[0].origin == remote.origin)
        // The batch still counts as received: the origin's watermark moved past it.
        #expect(try r.store.versionVector()[remote.origin] == 3)
    }

    @Test("a record for a lesson this node does not know yet is retried after a newer release adds it")
    func retryAfterRelease() throws {
        let r = try Replica()
        defer { r.dir.remove() }
        let remote = RemoteSigner()
        let lid = Identity.learnerID(nationalID: nationalID(6))
        let change = Change(hlc: HLCTimestamp(milliseconds: 1, counter: 0), record: .progress(ProgressRecord(
            learnerID: lid, lessonID: "new-lesson", percent: 100, completedAt: 1_767_225_000_000)))
        #expect(try r.store.apply([remote.batch([change])]).quarantinedChanges == 1)
        #expect(try r.store.retryQuarantine() == 0)
        var next = SampleCurriculum.make(version: 2)
        next.courses[0].lessons.append(.init(id: "new-lesson", title: "Bài mới"))
        try r.store.installCurriculum(next)
        #expect(try r.store.retryQuarantine() == 1)
        #expect(try r.store.quarantine().isEmpty)
        var model = ReplicaState()
        model.apply(change, from: remote.origin.node)
        #expect(try r.store.stateDigest() == Blake2b.hash(model.canonicalBytes()))
    }

    @Test("a remote stamp more than five minutes ahead is set aside until the clock catches up")
    func clockAhead() throws {
        let r = try Replica()
        defer { r.dir.remove() }
        let remote = RemoteSigner()
        let nid = nationalID(7)
        let ahead = HLCTimestamp(milliseconds: UInt64(r.clock.now + 10 * 60_000), counter: 0)
        let change = Change(hlc: ahead, record: .learner(LearnerChange(
            learnerID: Identity.learnerID(nationalID: nid), nationalID: nid, fullName: "Phạm C")))
        #expect(try r.store.apply([remote.batch([change])]).quarantinedChanges == 1)
        #expect(try r.store.quarantine().first?.reasonCode == "clock_ahead")
        r.clock.advance(6 * 60_000)
        #expect(try r.store.retryQuarantine() == 1)
    }

    @Test("a tampered batch is refused for its signature and nothing is stored")
    func badSignature() throws {
        let r = try Replica()
        defer { r.dir.remove() }
        let remote = RemoteSigner()
        let nid = nationalID(8)
        let good = remote.batch([Change(hlc: .zero, record: .learner(LearnerChange(
            learnerID: Identity.learnerID(nationalID: nid), nationalID: nid, fullName: "Đỗ D")))])
        var body = good.body
        body[body.count - 1] ^= 0x01
        let tampered = Batch(origin: good.origin, firstSeq: 1, lastSeq: 1, previousID: good.previousID, body: body, signature: good.signature)
        // Signed by A but claiming origin B.
        let other = RemoteSigner()
        let forged = Batch(origin: other.origin, firstSeq: 1, lastSeq: 1, previousID: good.previousID, body: good.body, signature: good.signature)
        let report = try r.store.apply([tampered, forged])
        #expect(report.refused.map(\.reason) == [.badSignature, .badSignature])
        #expect(report.appliedBatches == 0)
        #expect(try r.store.versionVector() == VersionVector())
    }

    @Test("the same (origin, seq) with different bytes quarantines the origin")
    func equivocation() throws {
        let r = try Replica()
        defer { r.dir.remove() }
        let remote = RemoteSigner()
        let lid = Identity.learnerID(nationalID: nationalID(9))
        func progress(_ p: Int) -> Change {
            Change(hlc: .zero, record: .progress(ProgressRecord(learnerID: lid, lessonID: "ksn-101-l1", percent: p, completedAt: nil)))
        }
        let b1 = remote.batch([progress(10)])
        let b1Prime = remote.batch([progress(90)])
        #expect(try r.store.apply([b1]).appliedBatches == 1)
        let report = try r.store.apply([b1Prime])
        #expect(report.refused.map(\.reason) == [.equivocation])
        #expect(report.newlyQuarantinedOrigins == [remote.origin])
        #expect(try r.store.quarantinedOrigins()[remote.origin] != nil)
        // Later batches from that origin are refused too, and it is not forwarded.
        let b2 = remote.batch([progress(50)], first: 2, previous: b1.id)
        #expect(try r.store.apply([b2]).refused.first?.reason == .originQuarantined("equivocation at seq 1-1"))
        #expect(try r.store.batches(after: VersionVector()).isEmpty)
    }

    @Test("a batch whose hash chain does not link to its predecessor quarantines the origin")
    func brokenChain() throws {
        let r = try Replica()
        defer { r.dir.remove() }
        let remote = RemoteSigner()
        let lid = Identity.learnerID(nationalID: nationalID(9))
        let c = Change(hlc: .zero, record: .enrollment(EnrollmentRecord(learnerID: lid, courseID: "ksn-101", length: 1)))
        let other = Change(hlc: .zero, record: .enrollment(EnrollmentRecord(learnerID: lid, courseID: "ksn-102", length: 1)))
        let b1 = remote.batch([c])
        let b2 = remote.batch([other], first: 2, previous: Data(repeating: 9, count: 32))
        // Out of order first: b2 is refused until b1 is there (it is never merged early).
        let early = try r.store.apply([b2, b1])
        #expect(early.refused.map(\.reason) == [.outOfOrder(expectedFirstSeq: 1)])
        let digest = try r.store.stateDigest()
        // In order: the broken link is refused like equivocation — not stored, not merged, origin quarantined.
        let report = try r.store.apply([b2])
        #expect(report.newlyQuarantinedOrigins == [remote.origin])
        #expect(report.refused.map(\.reason) == [.chainBroken] && report.appliedBatches == 0 && report.mergedChanges == 0)
        #expect(try r.store.stateDigest() == digest, "a batch with a broken chain changed the state")
        #expect(try r.store.versionVector()[remote.origin] == 1)
        #expect(try r.store.quarantinedOrigins()[remote.origin] != nil)
    }

    @Test("two different attempts under one id are set aside on every replica alike")
    func attemptConflict() throws {
        let a = try Replica(), b = try Replica()
        defer { a.dir.remove(); b.dir.remove() }
        let x = RemoteSigner(), y = RemoteSigner()
        let lid = Identity.learnerID(nationalID: nationalID(3))
        var rng = SeededGenerator(seed: 1)
        let id = RecordID.uuidV7(milliseconds: 1_000, using: &rng)
        func attempt(_ score: Int) -> Change {
            Change(hlc: .zero, record: .attempt(AttemptRecord(
                attemptID: id, learnerID: lid, quizID: "ksn-101-quiz", answers: [0, 0, 0, 0, 0], score: score,
                maxScore: 10, startedAt: 1_767_225_000_000, finishedAt: 1_767_225_060_000)))
        }
        let bx = x.batch([attempt(4)]), by = y.batch([attempt(6)])
        let ra = try a.store.apply([bx, by])
        let rb1 = try b.store.apply([by])
        let rb2 = try b.store.apply([bx, by])
        #expect(ra.quarantinedChanges == 1 && rb1.quarantinedChanges == 0 && rb2.quarantinedChanges == 1)
        #expect(try a.store.stateDigest() == b.store.stateDigest())
        #expect(try a.store.bestScores(learnerID: lid).isEmpty)
        #expect(try a.store.quarantine().first?.reasonCode == "attempt_conflict")
    }

    @Test("a batch of this node's own origin it never wrote is refused (restored without a new epoch)")
    func ownOrigin() throws {
        let a = try Replica()
        defer { a.dir.remove() }
        let id = try a.store.register(1)
        try a.store.sealPending()
        let mine = try a.store.batches(after: VersionVector())
        #expect(try a.store.apply(mine).duplicateBatches == 1)
        let me = try a.store.currentOrigin()
        let alien = Batch.seal(
            changes: [Change(hlc: .zero, record: .enrollment(EnrollmentRecord(learnerID: id, courseID: "ksn-101", length: 1)))],
            origin: me, firstSeq: 5, previousID: Batch.zeroID, signer: a.key)
        #expect(try a.store.apply([alien]).refused.first?.reason == .unknownOwnBatch)
    }
}

@Suite("Identity, epochs and the clock across restarts")
struct NodeLifecycleTests {
    @Test("the same person registered at two communes is one learner everywhere")
    func samePersonTwoCommunes() throws {
        let a = try Replica(), b = try Replica()
        defer { a.dir.remove(); b.dir.remove() }
        let idA = try a.store.register(42, commune: 70, name: "Hoàng Văn E")
        b.clock.advance(1_000)
        let idB = try b.store.register(42, commune: 8, name: "Hoàng Văn Em")
        #expect(idA == idB)
        try a.store.sealPending(); try b.store.sealPending()
        _ = try a.store.apply(b.store.batches(after: a.store.versionVector()))
        _ = try b.store.apply(a.store.batches(after: b.store.versionVector()))
        #expect(try a.store.stateDigest() == b.store.stateDigest())
    }

    @Test("the HLC and sequence numbers survive a reopen and never go back")
    func reopen() throws {
        let r = try Replica()
        defer { r.dir.remove() }
        _ = try r.store.register(1)
        try r.store.sealPending()
        let vv = try r.store.versionVector()
        let origin = try r.store.currentOrigin()
        r.clock.advance(-60_000)  // the machine's clock stepped back across the restart
        let again = try r.reopen()
        _ = try again.register(2)
        try again.sealPending()
        let batches = try again.batches(after: vv)
        #expect(batches.count == 1 && batches[0].firstSeq == 2 && batches[0].origin == origin)
        let changes = try ChangeCodec.decode(batches[0].body)
        let first = try ChangeCodec.decode(again.batches(after: VersionVector())[0].body)
        #expect(changes[0].hlc > first[0].hlc)
    }

    @Test("a rotated epoch starts a new origin from 1 and re-issues the old one's changes, sealed or pending, under it")
    func rotateEpoch() throws {
        let r = try Replica()
        defer { r.dir.remove() }
        _ = try r.store.register(1)
        try r.store.sealPending()
        _ = try r.store.register(3)  // still pending when the epoch turns
        let before = try r.store.currentOrigin()
        let digest = try r.store.stateDigest()
        try r.store.rotateEpoch()
        let after = try r.store.currentOrigin()
        #expect(before.node == after.node && before.epoch != after.epoch)
        #expect(try r.store.stateDigest() == digest, "re-issuing changed the data")
        _ = try r.store.register(2)
        try r.store.sealPending()
        let vv = try r.store.versionVector()
        // Seq 1–2 re-issued (register 1, register 3), then register 2: nothing is sealed under the old epoch again.
        #expect(vv[before] == 1 && vv[after] == 3)
        #expect(try r.store.quarantinedOrigins()[before]?.hasPrefix("retired") == true)
        let own = try r.store.ownBatches(after: VersionVector(), maxBytes: 1 << 20)
        #expect(own.allSatisfy { $0.origin == after }, "a retired origin would be uploaded again")
    }

    @Test("a database opened with another node's key is refused with a clear error")
    func wrongIdentity() throws {
        let r = try Replica()
        defer { r.dir.remove() }
        #expect(throws: StoreError.self) {
            _ = try NodeStore(path: r.dir.file("node.sqlite"), identity: .generate(), now: r.clock.function)
        }
    }
}
