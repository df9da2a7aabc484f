import Dispatch
import Foundation
@testable import HubPostgres
import Merge
import Model
import Node
import Sodium
import Store
import Synchronization
import TestSupport
import Testing

/// Every test that needs the PostgreSQL cluster, one at a time (one of them restarts it).
@Suite("The hub's shared state on PostgreSQL", .serialized, .enabled(if: TestPostgres.available, "set HOCVU_TEST_POSTGRES (ops/test.sh does)"))
struct HubPostgresTests {}

/// What a delivery of batches did, in a form both backends give: per batch, accepted,
/// duplicate, or the refusal code.
private func outcomes(_ decisions: [BatchAdmission]) -> [String] {
    decisions.map {
        switch $0 {
        case .accept: "accept"
        case .duplicate: "duplicate"
        case .refuse(let r): r.code
        case .quarantineOrigin(_, let r): r.code
        }
    }
}

extension HubPostgresTests {
    @Test("migrate creates the schema once and is a no-op after; a hub refuses a database without it, saying what to run")
    func schema() throws {
        let db = try TestPostgres.freshDatabase(migrated: false)
        let log = TestPostgres.log(database: db)
        defer { log.close() }
        #expect(try log.installedSchemaVersion() == 0)
        #expect(throws: SharedLogError.self) { try log.checkSchema() }
        do { try log.checkSchema() } catch { #expect("\(error)".contains("hocvu hub migrate")) }
        #expect(try log.migrate() == Array(1...PostgresHubLog.schemaVersion))
        #expect(try log.migrate() == [])
        try log.checkSchema()
        try TestPostgres.execute("UPDATE hocvu_schema SET version = 99", database: db)
        do {
            try log.checkSchema()
            Issue.record("a newer schema was accepted")
        } catch { #expect("\(error)".contains("upgrade hocvu")) }
    }

    /// The admission rule on PostgreSQL against the reference, a hub's SQLite store: the same
    /// deliveries (in order, re-sent, re-batched, out of order, forged, equivocating) give the
    /// same outcome per batch and the same heads.
    @Test("the shared log admits, refuses and quarantines exactly as a SQLite hub does", arguments: 0..<6)
    func admissionMatchesSQLite(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        let dir = try TemporaryDirectory(prefix: "hocvu-pg-admit")
        defer { dir.remove() }
        // Three sites' real histories: small batches so there are many.
        var histories = [[Batch]]()
        var keys = [SigningKeyPair]()
        for s in 0..<3 {
            let key = SigningKeyPair.generate()
            keys.append(key)
            let site = try siteStore(dir, "site\(s)", key: key)
            for round in 0..<4 {
                try site.recordResults(commune: testCommunes[s], first: s * 1_000 + round * 3, count: 3)
                _ = try site.sealPending(maxChanges: 5)
            }
            histories.append(try site.batches(after: VersionVector()))
        }
        // Hostile extras: a forged signature, and an equivocating batch (same range, other body, validly signed).
        var deliveries = histories.flatMap { $0 }
        let victim = histories[1][2]
        deliveries.append(
            Batch(
                origin: victim.origin, firstSeq: victim.firstSeq, lastSeq: victim.lastSeq, previousID: victim.previousID,
                body: victim.body, signature: Data(repeating: 7, count: 64)))
        let other = histories[2][1]
        let otherChanges = try ChangeCodec.decode(other.body)
        let twin = Batch.seal(
            changes: otherChanges.count > 1 ? Array(otherChanges.reversed()) : otherChanges + otherChanges, origin: other.origin,
            firstSeq: other.firstSeq, previousID: other.previousID, signer: keys[2])
        // Re-sends and reordering: every batch twice, shuffled within windows so most arrive in
        // order, then once more in order (as sites resend from what the hub says it has), then the twin.
        deliveries += histories.flatMap { $0 }.shuffled(using: &rng)
        var windowed = stride(from: 0, to: deliveries.count, by: 6).flatMap {
            deliveries[$0..<min($0 + 6, deliveries.count)].shuffled(using: &rng)
        }
        windowed += histories.flatMap { $0 }
        windowed.append(twin)

        let reference = try NodeStore(path: dir.file("hub.sqlite"), identity: .generate())
        try reference.installCurriculum(SampleCurriculum.make())
        let db = try TestPostgres.freshDatabase()
        let log = TestPostgres.log(database: db)
        defer { log.close() }
        // First, one round holding each of two batches twice: the second copy is a duplicate of
        // what this very transaction took.
        let h0 = histories[0]
        windowed = [h0[0], h0[0], h0[1], h0[1]] + windowed
        var i = 0
        var checked = 0
        while i < windowed.count {
            let n = i == 0 ? 4 : Int.random(in: 1...9, using: &rng)
            let round = Array(windowed[i..<min(i + n, windowed.count)])
            i += n
            let prepared = PreparedBatch.prepareAll(round, localOrigin: try reference.currentOrigin())
            let pg = outcomes(try log.append(prepared))
            let report = try reference.apply(prepared: prepared)
            // The reference reports counts and refusals; rebuild its per-batch outcome from them.
            #expect(pg.filter { $0 == "accept" }.count == report.appliedBatches, "seed \(seed) round at \(i)")
            #expect(pg.filter { $0 == "duplicate" }.count == report.duplicateBatches, "seed \(seed) round at \(i)")
            #expect(pg.filter { $0 != "accept" && $0 != "duplicate" }.sorted() == report.refused.map(\.reason.code).sorted(),
                    "seed \(seed) round at \(i)")
            checked += round.count
        }
        #expect(checked == windowed.count)
        #expect(try log.heads() == reference.versionVector())
        for k in keys {
            let node = NodeID(bytes: k.publicKey)!
            #expect(try log.welcomeState(of: node).lastIDs == reference.lastBatchIDs(of: node))
        }
        let counts = try log.counts()
        #expect(counts.quarantinedOrigins == 1)  // the equivocating twin, once it met its original
        #expect(try log.heads()[victim.origin] == histories[1].last!.lastSeq)  // a forged signature harms no one
    }

    @Test("two hubs appending one origin's batches at once: each batch is taken once, by one of them, in chain order")
    func twoHubsOneOrigin() throws {
        let dir = try TemporaryDirectory(prefix: "hocvu-pg-race")
        defer { dir.remove() }
        let site = try siteStore(dir, "site")
        for r in 0..<20 {
            try site.recordResults(commune: 70, first: r * 2, count: 2)
            _ = try site.sealPending(maxChanges: 3)
        }
        let history = try site.batches(after: VersionVector())
        #expect(history.count >= 40)
        let db = try TestPostgres.freshDatabase()
        let hubs = [TestPostgres.log(database: db, hub: "a"), TestPostgres.log(database: db, hub: "b")]
        defer { hubs.forEach { $0.close() } }
        let me = try site.currentOrigin()
        let accepted = Mutex([String: Int]())
        let failures = Mutex([String]())
        // Each hub gets the whole history, in rounds of its own sizes, at the same time.
        DispatchQueue.concurrentPerform(iterations: 2) { h in
            var rng = SeededGenerator(seed: UInt64(h + 1))
            var i = 0
            while i < history.count {
                let n = Int.random(in: 1...4, using: &rng)
                let round = Array(history[i..<min(i + n, history.count)])
                do {
                    let d = try hubs[h].append(PreparedBatch.prepareAll(round, localOrigin: me))
                    for (b, o) in zip(round, outcomes(d)) {
                        if o == "accept" { accepted.withLock { $0["\(b.firstSeq)", default: 0] += 1 } }
                        // A hub behind the other is told it is out of order, never equivocation.
                        if o != "accept", o != "duplicate", o != "out_of_order" { failures.withLock { $0.append(o) } }
                        // Out of order: resend from what the log holds, as a site would after ACK.
                    }
                    if d.contains(where: { if case .refuse(.outOfOrder) = $0 { true } else { false } }) {
                        let head = try hubs[h].heads()[round[0].origin]
                        i = history.firstIndex { $0.lastSeq > head } ?? history.count
                        continue
                    }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                    return
                }
                i += n
            }
        }
        #expect(failures.withLock { $0 } == [])
        #expect(accepted.withLock { $0.count } == history.count)
        #expect(accepted.withLock { $0.values.allSatisfy { $0 == 1 } })
        #expect(try hubs[0].heads()[me] == history.last!.lastSeq)
        #expect(try hubs[1].counts().batches == history.count)
        #expect(try hubs[1].counts().quarantinedOrigins == 0)
    }

    @Test("two hubs offered two different batches for the same sequence numbers at once: one is taken, the origin is quarantined")
    func equivocationAcrossHubs() throws {
        let dir = try TemporaryDirectory(prefix: "hocvu-pg-equiv")
        defer { dir.remove() }
        let key = SigningKeyPair.generate()
        let site = try siteStore(dir, "site", key: key)
        try site.recordResults(commune: 70, first: 0, count: 2)
        _ = try site.sealPending()
        let first = try site.batches(after: VersionVector())
        let origin = try site.currentOrigin()
        let db = try TestPostgres.freshDatabase()
        let hubs = [TestPostgres.log(database: db, hub: "a"), TestPostgres.log(database: db, hub: "b")]
        defer { hubs.forEach { $0.close() } }
        _ = try hubs[0].append(PreparedBatch.prepareAll(first, localOrigin: origin))
        // The site (stolen, rewritten) tells each hub a different story for the next sequence numbers.
        let next = first.last!.lastSeq + 1
        let changes = try ChangeCodec.decode(first[0].body)
        let stories = [
            Batch.seal(changes: Array(changes.prefix(2)), origin: origin, firstSeq: next, previousID: first.last!.id, signer: key),
            Batch.seal(changes: Array(changes.suffix(2)), origin: origin, firstSeq: next, previousID: first.last!.id, signer: key),
        ]
        let results = Mutex([[String]](repeating: [], count: 2))
        DispatchQueue.concurrentPerform(iterations: 2) { h in
            let d = (try? hubs[h].append(PreparedBatch.prepareAll([stories[h]], localOrigin: origin))).map(outcomes) ?? ["error"]
            results.withLock { $0[h] = d }
        }
        let all = results.withLock { $0 }.flatMap { $0 }.sorted()
        #expect(all == ["accept", "equivocation"])
        #expect(try hubs[0].counts().quarantinedOrigins == 1)
        // From then on, the origin is refused at every hub.
        let later = Batch.seal(changes: [changes[0]], origin: origin, firstSeq: next + 2, previousID: stories[0].id, signer: key)
        #expect(outcomes(try hubs[1].append(PreparedBatch.prepareAll([later], localOrigin: origin))) == ["origin_quarantined"])
    }

    @Test("enrollment in the shared database: once per commune and key, revocation moves the version every hub watches")
    func enrollment() throws {
        let db = try TestPostgres.freshDatabase()
        let log = TestPostgres.log(database: db)
        defer { log.close() }
        let (i1, t1, i2, t2) = (Data(repeating: 1, count: 32), Data(repeating: 2, count: 32), Data(repeating: 3, count: 32), Data(repeating: 4, count: 32))
        let v0 = try log.enrollmentVersion()
        try log.enroll(communeCode: 70, identityKey: i1, transportKey: t1, at: 1)
        #expect(try log.enrollmentVersion() == v0 + 1)
        #expect(throws: StoreError.alreadyEnrolled(70)) { try log.enroll(communeCode: 70, identityKey: i2, transportKey: t2, at: 2) }
        #expect(throws: StoreError.keyInUse) { try log.enroll(communeCode: 73, identityKey: i1, transportKey: t2, at: 2) }
        #expect(throws: StoreError.badKey("identity key")) { try log.enroll(communeCode: 73, identityKey: Data([1]), transportKey: t2, at: 2) }
        #expect(throws: StoreError.notEnrolled(73)) { try log.revoke(communeCode: 73, at: 3) }
        try log.revoke(communeCode: 70, at: 3)
        #expect(try log.enrollmentVersion() == v0 + 2)
        #expect(try log.enrollments().map(\.isRevoked) == [true])
        // A revoked commune may be enrolled again with new keys.
        try log.enroll(communeCode: 70, identityKey: i2, transportKey: t2, at: 4)
        let now = try log.enrollments()
        #expect(now.count == 1 && now[0].identityKey == i2 && !now[0].isRevoked)
        // The hub's view mirrors it exactly, and a second mirror changes nothing.
        let dir = try TemporaryDirectory(prefix: "hocvu-pg-mirror")
        defer { dir.remove() }
        let view = try NodeStore(path: dir.file("view.sqlite"), identity: .generate())
        try view.enroll(communeCode: 73, identityKey: i1, transportKey: t1)  // not in the shared database: goes
        #expect(try view.mirrorEnrollments(now))
        #expect(try view.enrollments().map(\.communeCode) == [70])
        #expect(try view.enrollments()[0].identityKey == i2)
        #expect(try !view.mirrorEnrollments(now))
    }

    @Test("a database that cannot be reached fails each call within the timeout, naming it; nothing is taken")
    func unreachable() throws {
        let log = PostgresHubLog(
            .init(host: "127.0.0.1", port: 1, database: "nowhere", user: "x", tls: "disable", timeoutSeconds: 1, hubName: "a"),
            logger: quietLogger)
        defer { log.close() }
        let started = Date()
        do {
            _ = try log.heads()
            Issue.record("an unreachable database answered")
        } catch let e as SharedLogError {
            #expect(e.description.contains("127.0.0.1:1/nowhere"))
        }
        #expect(Date().timeIntervalSince(started) < 5)
    }
}
