import Foundation
import Merge
import Model
import Node
import SwiftProtobuf
import Sodium
import Store
import TestSupport
import Testing
import Transport
@testable import Wire  // generated structs: values WireMessage would never produce

/// Issue 9: each defect found by an independent client, reproduced with one message over real
/// CURVE on tcp loopback. Before the fix each of these killed the hub or the site (a trap) or
/// moved a national figure; now the peer is refused, counted per site and reason, and everyone
/// else keeps syncing.
@Suite("An enrolled peer is not trusted: hostile values at the trust boundary", .serialized)
struct TrustBoundaryTests {
    static func frames(_ kind: Hocvu_Wire_V1_Envelope.Kind, id: UInt64 = 1, _ payload: some SwiftProtobufMessage) -> [Data] {
        var e = Hocvu_Wire_V1_Envelope()
        e.major = ProtocolVersion.major
        e.minor = ProtocolVersion.minor
        e.kind = kind
        e.messageID = id
        return [try! e.serializedData(), try! payload.serializedData()]
    }

    static func hello(_ site: Fleet.Site, cursor: UInt64?) throws -> [Data] {
        var h = Hocvu_Wire_V1_Hello()
        h.node = site.identity.publicKey
        h.epoch = try site.origin.epoch
        h.clockMs = Int64.min  // the site's own reading: informational, never arithmetic
        if let cursor {
            h.wantsHomeFeed = true
            h.homeFeedCursor = cursor
        }
        return frames(.hello, h)
    }

    /// A batch header as the site itself would sign it, with any range.
    static func signedBatch(_ site: Fleet.Site, first: UInt64, last: UInt64, previous: Data = Batch.zeroID, body: Data? = nil)
        throws -> Hocvu_Wire_V1_Batch
    {
        let origin = try site.origin
        let change = Change(
            hlc: HLCTimestamp(milliseconds: UInt64(NodeStore.systemNow()), counter: 0),
            record: .enrollment(EnrollmentRecord(
                learnerID: Identity.learnerID(nationalID: "001900000001"), courseID: "ksn-101", length: 1)))
        let b = Batch(
            origin: origin, firstSeq: first, lastSeq: last, previousID: previous,
            body: body ?? Data(ChangeCodec.encode([change])), signature: Data(count: 64))
        var x = Hocvu_Wire_V1_Batch()
        x.node = origin.node.bytes
        x.epoch = origin.epoch
        x.firstSeq = first
        x.lastSeq = last
        x.previousID = previous
        x.body = b.body
        x.signature = site.identity.sign(b.header)
        return x
    }

    static func batches(_ list: [Hocvu_Wire_V1_Batch], id: UInt64) -> [Data] {
        var p = Hocvu_Wire_V1_Batches()
        p.batches = list
        return frames(.batches, id: id, p)
    }

    @Test("one HELLO asking for the home feed after cursor 2^63 or 2^64−1 is refused; the hub keeps serving")
    func helloWithHugeCursor() throws {
        let fleet = try Fleet(communes: [70, 73])
        defer { fleet.shutdown() }
        let context = try ZMQContext()
        let raw = try rawClient(fleet, fleet.sites[0], context: context)
        defer { raw.close() }
        for cursor in [UInt64(1) << 63, UInt64.max, ProtocolLimits.maxSequence + 1] {
            _ = try raw.send(try Self.hello(fleet.sites[0], cursor: cursor))
        }
        let key = RefusalKey(commune: 70, reason: "out_of_range")
        #expect(try eventually(5) { fleet.hub.stats.refusals[key] == 3 })
        #expect(fleet.hub.isAlive)
        // The largest valid cursor is served (nothing after it), and an honest site still syncs.
        _ = try raw.send(try Self.hello(fleet.sites[0], cursor: ProtocolLimits.maxSequence))
        guard case .welcome? = try receive(raw) else { Issue.record("no WELCOME for a valid cursor"); return }
        let honest = fleet.sites[1]
        try recordResults(honest.store, commune: honest.commune, first: 10, count: 2)
        try fleet.startSite(honest)
        #expect(try eventually { try fleet.hubHasAll(of: honest) })
    }

    @Test("BATCHES claiming ranges up to 2^64−1, or own signed batches at 2^63, are refused before any arithmetic")
    func batchesWithHugeRanges() throws {
        let fleet = try Fleet(communes: [70, 73])
        defer { fleet.shutdown() }
        let a = fleet.sites[0]
        let context = try ZMQContext()
        let raw = try rawClient(fleet, a, context: context)
        defer { raw.close() }
        _ = try raw.send(try Self.hello(a, cursor: nil))
        guard case .welcome? = try receive(raw) else { Issue.record("no WELCOME"); return }
        let hostile: [(UInt64, UInt64)] = [
            (1, UInt64.max), (1, UInt64(1) << 63), (UInt64(1) << 63, UInt64(1) << 63), (UInt64.max, UInt64.max),
            (ProtocolLimits.maxSequence + 1, ProtocolLimits.maxSequence + 1), (0, 0), (5, 4), (1, 20_001),
        ]
        for (i, (first, last)) in hostile.enumerated() {
            _ = try raw.send(Self.batches([try Self.signedBatch(a, first: first, last: last)], id: UInt64(10 + i)))
        }
        let key = RefusalKey(commune: 70, reason: "out_of_range")
        #expect(try eventually(5) { fleet.hub.stats.refusals[key] == hostile.count })
        #expect(fleet.hub.isAlive)
        #expect(try fleet.hubStore.count("learner") == 0)
        let honest = fleet.sites[1]
        try recordResults(honest.store, commune: honest.commune, first: 10, count: 2)
        try fleet.startSite(honest)
        #expect(try eventually { try fleet.hubHasAll(of: honest) })
    }

    @Test("a signed batch that breaks its origin's hash chain is refused like equivocation: not merged, not counted")
    func brokenChainIsNotMerged() throws {
        let fleet = try Fleet(communes: [70])
        defer { fleet.shutdown() }
        let a = fleet.sites[0]
        try recordResults(a.store, commune: a.commune, first: 0, count: 4)
        try a.store.sealPending()
        let context = try ZMQContext()
        let raw = try rawClient(fleet, a, context: context)
        defer { raw.close() }
        _ = try raw.send(try Self.hello(a, cursor: nil))
        guard case .welcome? = try receive(raw) else { Issue.record("no WELCOME"); return }
        _ = try raw.send(WireCodec.encode(.batches(try a.store.batches(after: VersionVector())), id: 2))
        guard case .ack(let ack1)? = try receive(raw), ack1.refused.isEmpty else { Issue.record("honest batches refused"); return }
        let before = try fleet.hubStore.nationalReport()
        let digest = try fleet.hubStore.stateDigest()
        let next = ack1.have[try a.origin] + 1
        // A fifth learner, in a batch that names a previous batch that never existed.
        let lid = Identity.learnerID(nationalID: "001999999999")
        let body = Data(ChangeCodec.encode([Change(
            hlc: HLCTimestamp(milliseconds: UInt64(NodeStore.systemNow()), counter: 0),
            record: .learner(LearnerChange(
                learnerID: lid, nationalID: "001999999999", fullName: "X", role: .civilServant, unit: "U", homeCommune: 70)))]))
        let forged = try Self.signedBatch(a, first: next, last: next, previous: Data(repeating: 7, count: 32), body: body)
        _ = try raw.send(Self.batches([forged], id: 3))
        guard case .ack(let ack2)? = try receive(raw) else { Issue.record("no ACK"); return }
        #expect(ack2.refused.map(\.code) == ["chain_broken"])
        #expect(try fleet.hubStore.stateDigest() == digest)
        #expect(try fleet.hubStore.nationalReport().national == before.national)
        #expect(try fleet.hubStore.quarantinedOrigins()[try a.origin] != nil)
        #expect(fleet.hub.stats.refusals[RefusalKey(commune: 70, reason: "chain_broken")] == 1)
        #expect(fleet.hub.stats.alerts.count == 1)
    }

    @Test("more BATCHES messages in flight than the credit are refused and counted as over_credit")
    func creditIsEnforced() throws {
        let fleet = try Fleet(communes: [70])
        defer { fleet.shutdown() }
        let a = fleet.sites[0]
        let context = try ZMQContext()
        let raw = try rawClient(fleet, a, context: context)
        defer { raw.close() }
        _ = try raw.send(try Self.hello(a, cursor: nil))
        guard case .welcome(let w)? = try receive(raw) else { Issue.record("no WELCOME"); return }
        // Stop the hub's loop from draining between sends: everything arrives in one burst.
        let burst = Int(w.credit) + 400
        var frames = [[Data]]()
        for i in 0..<burst { frames.append(WireCodec.encode(.batches([]), id: UInt64(100 + i))) }
        for f in frames { _ = try raw.send(f) }
        var acks = 0
        while let m = try receive(raw, seconds: 1) { if case .ack = m { acks += 1 } }
        let over = fleet.hub.stats.refusals[RefusalKey(commune: 70, reason: "over_credit")] ?? 0
        #expect(acks + over == burst)
        #expect(over > 0, "a burst far over the credit was all accepted")
        #expect(fleet.hub.isAlive)
    }

    @Test("a bare certificate counts nowhere as certified; it is flagged as unbacked")
    func bareCertificateIsFlaggedNotCounted() throws {
        let fleet = try Fleet(communes: [70])
        defer { fleet.shutdown() }
        let a = fleet.sites[0]
        let id = try a.store.register(1, commune: 70)
        try a.store.sealPending()
        let context = try ZMQContext()
        let raw = try rawClient(fleet, a, context: context)
        defer { raw.close() }
        _ = try raw.send(try Self.hello(a, cursor: nil))
        guard case .welcome? = try receive(raw) else { Issue.record("no WELCOME"); return }
        var batches = try a.store.batches(after: VersionVector())
        _ = try raw.send(WireCodec.encode(.batches(batches), id: 2))
        guard case .ack(let ack)? = try receive(raw) else { Issue.record("no ACK"); return }
        // The site's own key signs a certificate with no progress and no attempt behind it.
        let now = NodeStore.systemNow()
        let cert = Change(
            hlc: HLCTimestamp(milliseconds: UInt64(now), counter: 0),
            record: .certificate(CertificateRecord(
                certificateID: Identity.certificateID(learnerID: id, courseID: "ksn-101"), learnerID: id,
                courseID: "ksn-101", issuedAt: now)))
        let next = ack.have[try a.origin] + 1
        batches = [Batch.seal(
            changes: [cert], origin: try a.origin, firstSeq: next, previousID: batches.last!.id, signer: a.identity)]
        _ = try raw.send(WireCodec.encode(.batches(batches), id: 3))
        guard case .ack(let ack2)? = try receive(raw), ack2.refused.isEmpty else { Issue.record("refused"); return }
        let report = try fleet.hubStore.nationalReport()
        #expect(report.national.certified == 0)
        #expect(report.national.unbackedCertificates == 1)
    }

    @Test("results dated before the programme began (1970) are set aside, not counted")
    func datesBeforeTheProgramme() throws {
        let r = try Fleet(communes: [70])
        defer { r.shutdown() }
        let a = r.sites[0]
        let id = try a.store.register(2, commune: 70)
        #expect(throws: RecordValidationError.dateBeforeProgramme(field: "completion time")) {
            try a.store.record([.progress(learnerID: id, lessonID: "ksn-101-l1", percent: 100, at: 1_000)])
        }
        #expect(throws: RecordValidationError.dateBeforeProgramme(field: "attempt start time")) {
            try a.store.record([.attempt(
                learnerID: id, quizID: "ksn-101-quiz", answers: [0, 1, 2, 3, 0], score: 8, maxScore: 10, startedAt: 0,
                finishedAt: NodeStore.systemNow())])
        }
    }

    @Test("a later claim cannot move a learner to another commune; the first holds everywhere and the claim is counted")
    func learnerTakeover() throws {
        let fleet = try Fleet(communes: [70, 73])
        defer { fleet.shutdown() }
        let home = fleet.sites[0], attacker = fleet.sites[1]
        let lid = try home.store.register(5, commune: 70)
        try fleet.startSite(home)
        #expect(try eventually { try fleet.hubHasAll(of: home) })
        // The attacker knows the national ID and writes the learner as its own, later.
        _ = try attacker.store.register(5, commune: 73)
        try fleet.startSite(attacker)
        #expect(try eventually { try fleet.hubHasAll(of: attacker) })
        let communes = try fleet.hubStore.nationalReport().communes
        #expect(communes.first { $0.code == 70 }?.figures.learners == 1)
        #expect((communes.first { $0.code == 73 }?.figures.learners ?? 0) == 0)
        #expect(fleet.hub.stats.refusals[RefusalKey(commune: 73, reason: "home_contested")] == 1)
        // And the home site cannot be told otherwise locally either.
        #expect(throws: RecordValidationError.homeCommuneFixed(current: 70)) {
            try home.store.record([.updateLearner(learnerID: lid, homeCommune: 73)])
        }
    }

    @Test("connection after connection without HELLO from one enrolled site: each refused, none remembered; the honest HELLO is")
    func connectionsWithoutHelloAreNotRemembered() throws {
        let fleet = try Fleet(communes: [70])
        defer { fleet.shutdown() }
        let context = try ZMQContext()
        var sockets = [ZMQSocket]()
        for i in 0..<40 {
            let raw = try rawClient(fleet, fleet.sites[0], context: context)
            _ = try raw.send(WireCodec.encode(.batches([]), id: UInt64(i + 1)))
            sockets.append(raw)
        }
        let refusals = { fleet.hub.stats.refusals[RefusalKey(commune: 70, reason: "batches_before_hello"), default: 0] }
        #expect(eventually(20) { refusals() == 40 }, "each BATCHES before HELLO is refused and counted")
        #expect(eventually { fleet.hub.stats.openSessions == 0 }, "no connection that never said HELLO is kept")
        try fleet.startSite(fleet.sites[0])
        #expect(eventually { fleet.hub.stats.openSessions == 1 }, "the honest site's session is")
        for s in sockets { s.close() }
    }
}

/// The site side: a hostile or broken hub cannot brick a site or move its clock for good.
@Suite("A hostile hub cannot brick a site", .serialized)
struct HostileHubTests {
    static func welcome(clock: Int64, have: UInt64, node: Data, epoch: UInt64) -> [Data] {
        var w = Hocvu_Wire_V1_Welcome()
        w.clockMs = clock
        w.credit = UInt32.max
        var e = Hocvu_Wire_V1_OriginSeq()
        e.node = node
        e.epoch = epoch
        e.seq = have
        w.have = [e]
        return TrustBoundaryTests.frames(.welcome, w)
    }

    @Test("WELCOMEs with clocks at Int64.max/min, have = 2^64−1, or ten years fast: the site keeps its time and runs")
    func hostileWelcome() throws {
        let dir = try TemporaryDirectory(prefix: "hocvu-hostile-hub")
        defer { dir.remove() }
        let hubKeys = BoxKeyPair.generate()
        let fake = try FakeHub(keys: hubKeys)
        defer { fake.close() }
        let identity = SigningKeyPair.generate()
        let store = try NodeStore(path: dir.file("site.sqlite"), identity: identity)
        try store.installCurriculum(SampleCurriculum.make())
        let origin = try store.currentOrigin()
        var config = SiteClient.Configuration(hubEndpoint: fake.endpoint, hubTransportKey: hubKeys.publicKey, transportKeys: .generate())
        config.reconnectBase = 100
        let client = try SiteClient(store: store, configuration: config, logger: quietLogger)
        try client.start()
        defer { client.stop() }
        let tenYears: Int64 = 10 * 365 * 86_400_000
        let welcomes: [[Data]] = [
            Self.welcome(clock: Int64.max, have: 0, node: identity.publicKey, epoch: origin.epoch),
            Self.welcome(clock: Int64.min, have: 0, node: identity.publicKey, epoch: origin.epoch),
            Self.welcome(clock: NodeStore.systemNow(), have: UInt64.max, node: identity.publicKey, epoch: origin.epoch),
            Self.welcome(clock: NodeStore.systemNow() + tenYears, have: 0, node: identity.publicKey, epoch: origin.epoch),
        ]
        for w in welcomes {
            // Each connection starts with HELLO; answer it with a hostile WELCOME, then drop the link.
            let hello = try fake.receive(milliseconds: 5_000) { f in
                (try? WireCodec.decode(f)).map { if case .hello = $0.message { true } else { false } } ?? false
            }
            guard let routing = hello.last?.routing else { Issue.record("no HELLO"); return }
            fake.send(routing, w)
            usleep(300_000)
            #expect(!client.hasFinished, "the site's sync loop died")
            try fake.restart()
        }
        #expect(store.clockOffset == 0, "a hostile clock was adopted")
        #expect(client.status.clockDisagreement != nil)
        // The store still opens and records (the import path), with its own time.
        let reopened = try NodeStore(path: dir.file("site.sqlite"), identity: identity)
        #expect(reopened.clockOffset == 0 && reopened.clockRepairs.isEmpty)
        _ = try reopened.register(3, commune: 70)
    }

    @Test("a store poisoned by an unchecked hub (Int64.max offset, HLC years ahead) is repaired on open")
    func poisonedStoreIsRepaired() throws {
        let dir = try TemporaryDirectory(prefix: "hocvu-poisoned")
        defer { dir.remove() }
        let identity = SigningKeyPair.generate()
        let path = dir.file("site.sqlite")
        do {
            let store = try NodeStore(path: path, identity: identity)
            try store.installCurriculum(SampleCurriculum.make())
        }
        // What an older hocvu persisted after one hostile WELCOME.
        let far = HLCTimestamp(milliseconds: UInt64(NodeStore.systemNow() + 10 * 365 * 86_400_000), counter: 3)
        try sqlite(path, "UPDATE node SET clock_offset_ms = \(Int64.max), hlc = \(Int64(bitPattern: far.rawValue))")
        let store = try NodeStore(path: path, identity: identity)
        #expect(store.clockOffset == 0)
        #expect(store.clockRepairs.count == 2)
        _ = try store.register(4, commune: 70)
        try store.sealPending()
        let batch = try #require(try store.batches(after: VersionVector()).first)
        let stamp = try ChangeCodec.decode(batch.body)[0].hlc
        #expect(Int64(stamp.milliseconds) < NodeStore.systemNow() + 60_000, "results are still stamped in the future")
    }
}

/// Runs one statement on a database file with the sqlite3 C library (as an operator's repair
/// would), outside the store.
func sqlite(_ path: String, _ sql: String) throws {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
    p.arguments = [path, sql]
    try p.run()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { throw StoreError.notInitialized }
}

typealias SwiftProtobufMessage = SwiftProtobuf.Message
