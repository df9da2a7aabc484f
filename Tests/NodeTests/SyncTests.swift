import Foundation
import Logging
import Merge
import Model
import Node
import Release
import Sodium
import Store
import TestSupport
import Testing
import Transport
import Wire

func eventually(_ seconds: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if try condition() { return true }
        usleep(20_000)
    }
    return try condition()
}

let quietLogger: Logger = {
    var l = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    l.logLevel = .critical
    return l
}()

/// A hub and its sites, each with its own database file and keys, on tcp loopback.
final class Fleet {
    let dir: TemporaryDirectory
    let hubStore: NodeStore
    let hubKeys = BoxKeyPair.generate()
    let hubIdentity = SigningKeyPair.generate()
    var hub: HubServer
    var endpoint = ""
    var sites: [Site] = []
    /// Release settings for sites started by ``startSite(_:)`` (nil: no releases).
    var siteTrust: TrustPolicy?
    var siteFetch: (SiteClient.Configuration) -> SiteClient.Configuration = { $0 }

    final class Site {
        let commune: Int
        let identity = SigningKeyPair.generate()
        let transport = BoxKeyPair.generate()
        let store: NodeStore
        var client: SiteClient?
        init(commune: Int, dir: TemporaryDirectory, clockSkew: Int64 = 0) throws {
            self.commune = commune
            store = try NodeStore(
                path: dir.file("site-\(commune).sqlite"), identity: identity, now: { NodeStore.systemNow() + clockSkew })
            try store.installCurriculum(SampleCurriculum.make())
        }
        var origin: Origin { get throws { try store.currentOrigin() } }
    }

    init(
        communes: [Int], clockSkews: [Int: Int64] = [:], hubDatabase: String? = nil,
        releases: ((String) -> HubServer.ReleaseSettings)? = nil,
        hub configure: (inout HubServer.Configuration) -> Void = { _ in }
    ) throws {
        dir = try TemporaryDirectory(prefix: "hocvu-fleet")
        hubStore = try NodeStore(path: hubDatabase ?? dir.file("hub.sqlite"), identity: hubIdentity)
        try hubStore.installCurriculum(SampleCurriculum.make())
        var config = HubServer.Configuration(bind: "tcp://127.0.0.1:*", transportKeys: hubKeys)
        config.identity = hubIdentity
        config.releases = releases?(dir.file("hub-chunks"))
        siteTrust = config.releases?.trust
        configure(&config)
        hub = HubServer(store: hubStore, configuration: config, logger: quietLogger)
        endpoint = try hub.start()
        for c in communes {
            let s = try Site(commune: c, dir: dir, clockSkew: clockSkews[c] ?? 0)
            try hubStore.enroll(communeCode: c, identityKey: s.identity.publicKey, transportKey: s.transport.publicKey)
            sites.append(s)
        }
    }

    func startSite(_ s: Site) throws {
        var config = SiteClient.Configuration(hubEndpoint: endpoint, hubTransportKey: hubKeys.publicKey, transportKeys: s.transport)
        config.reconnectBase = 100
        config.hubIdentityKey = hubIdentity.publicKey
        if let siteTrust {
            config.trust = siteTrust
            config.chunkDirectory = chunkDirectory(s)
        }
        config = siteFetch(config)
        let client = try SiteClient(store: s.store, configuration: config, logger: quietLogger)
        try client.start()
        s.client = client
    }

    func chunkDirectory(_ s: Site) -> String { dir.file("chunks-\(s.commune)") }

    /// Runs `hocvu site run` for `s` as a separate process (its keys written to files first), so a
    /// test can kill -9 it.
    func siteProcess(_ s: Site, extra: [String] = []) throws -> Process {
        let keys = dir.file("keys-\(s.commune)")
        try FileManager.default.createDirectory(atPath: keys, withIntermediateDirectories: true)
        try Data((s.identity.secretKey.hexString + "\n").utf8).write(to: URL(fileURLWithPath: "\(keys)/identity.key"))
        try Data((s.transport.secretKey.hexString + "\n").utf8).write(to: URL(fileURLWithPath: "\(keys)/transport.key"))
        // Secret keys readable by others are refused, as ssh does.
        for k in ["identity.key", "transport.key"] { chmod("\(keys)/\(k)", 0o600) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("hocvu")
        process.arguments = [
            "site", "run", "--db", dir.file("site-\(s.commune).sqlite"), "--keys", keys, "--hub", endpoint,
            "--hub-key", hubKeys.publicKey.hexString,
        ] + extra
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        return process
    }

    /// True when the hub holds everything site `s` has sealed.
    func hubHasAll(of s: Site) throws -> Bool {
        try s.store.sealPending()
        let siteVV = try s.store.versionVector()
        let hubVV = try hubStore.versionVector()
        return siteVV.entries.filter { $0.key.node == s.store.node }.allSatisfy { hubVV[$0.key] >= $0.value }
    }

    func shutdown() {
        sites.forEach { $0.client?.stop() }
        hub.stop()
        dir.remove()
    }
}

/// Records `n` learners at `site`, each enrolled with one lesson done and one attempt.
func recordResults(_ store: NodeStore, commune: Int, first: Int, count n: Int) throws {
    let now = NodeStore.systemNow()
    for i in first..<(first + n) {
        let id = try store.register(i, commune: commune)
        try store.record([
            .enroll(learnerID: id, courseID: "ksn-101"),
            .progress(learnerID: id, lessonID: "ksn-101-l1", percent: 100, at: now),
            .attempt(learnerID: id, quizID: "ksn-101-quiz", answers: [0, 1, 2, 3, 0], score: 8, maxScore: 10,
                     startedAt: now - 60_000, finishedAt: now),
        ])
    }
}

extension NodeStore {
    func register(_ i: Int, commune: Int) throws -> String {
        let out = try record([.registerLearner(
            nationalID: String(format: "0019%08d", i), fullName: "Học viên \(i)", role: .civilServant, unit: "UBND",
            homeCommune: commune)])
        guard case .learner(let id) = out[0] else { fatalError() }
        return id
    }

    func count(_ table: String) throws -> Int { try attemptsCountForTests(table) }
}

/// A raw DEALER with an enrolled site's keys, for sending what a real site never would.
func rawClient(_ fleet: Fleet, _ site: Fleet.Site, context: ZMQContext) throws -> ZMQSocket {
    let s = try ZMQSocket(context, .dealer)
    try s.makeCurveClient(publicKey: site.transport.publicKey, secretKey: site.transport.secretKey, serverKey: fleet.hubKeys.publicKey)
    try s.connect(fleet.endpoint)
    return s
}

func receive(_ socket: ZMQSocket, seconds: Double = 5) throws -> WireMessage? {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        _ = try zmqPoll([socket], timeoutMilliseconds: 50)
        if let m = try socket.receive() { return try WireCodec.decode(m.frames).message }
    }
    return nil
}

@Suite("Sites replicate results to the hub over CURVE on tcp loopback", .serialized)
struct SyncTests {
    @Test("records of a site's learners recorded at another commune come home; no other learner's data does")
    func recordsComeHome() throws {
        let fleet = try Fleet(communes: [70, 73, 4])
        defer { fleet.shutdown() }
        let hanoi = fleet.sites[0], cuaNam = fleet.sites[1], baDinh = fleet.sites[2]
        try recordResults(hanoi.store, commune: 70, first: 0, count: 5)  // 70's own learners
        try recordResults(hanoi.store, commune: 73, first: 900, count: 2)  // visitors from 73, trained at 70
        try recordResults(cuaNam.store, commune: 73, first: 100, count: 3)
        try recordResults(baDinh.store, commune: 4, first: 200, count: 4)
        for s in fleet.sites { try fleet.startSite(s) }
        #expect(try eventually { try fleet.sites.allSatisfy(fleet.hubHasAll) })
        #expect(try fleet.hubStore.count("attempt") == 14)

        // 73 now holds its 3 learners and its 2 visitors' records (registration, enrollment,
        // progress, attempt), merged exactly as at the hub — and nothing of 70's or 4's own learners.
        #expect(eventually { cuaNam.client?.status.homeFeedCursor == 8 })
        #expect(try cuaNam.store.count("learner") == 5)
        #expect(try cuaNam.store.count("attempt") == 5)
        #expect(try cuaNam.store.count("enrollment") == 5)
        let visitor = Identity.learnerID(nationalID: String(format: "0019%08d", 900))  // as register() derives it
        #expect(try cuaNam.store.courseStatus(learnerID: visitor, courseID: "ksn-101")
            == fleet.hubStore.courseStatus(learnerID: visitor, courseID: "ksn-101"))
        #expect(try cuaNam.store.bestScores(learnerID: visitor) == fleet.hubStore.bestScores(learnerID: visitor))
        #expect(try hanoi.store.count("learner") == 7 && baDinh.store.count("learner") == 4)
        #expect(try cuaNam.store.quarantine().isEmpty)
        // The feed is not uploaded back: 73's change log holds only its own 3 learners' changes.
        #expect(try cuaNam.store.versionVector().entries.keys.map(\.node) == [cuaNam.store.node])

        // Restart: the cursor is persisted, nothing is sent twice.
        let sent = fleet.hub.stats.homeFeedEntriesSent
        cuaNam.client?.stop()
        try fleet.startSite(cuaNam)
        #expect(eventually { fleet.hub.stats.connectedCommunes.contains(73) && cuaNam.client?.status.connected == true })
        usleep(300_000)
        #expect(fleet.hub.stats.homeFeedEntriesSent == sent)
        // A new result of a visitor, recorded while 73 is connected, comes home live.
        try recordResults(hanoi.store, commune: 73, first: 950, count: 1)
        hanoi.client?.wake()
        #expect(try eventually { try cuaNam.store.count("attempt") == 6 })
    }

    @Test("a site whose clock is 10 minutes fast runs on the hub's time: its results are accepted, not quarantined")
    func wrongClockAdoptsHubOffset() throws {
        let fleet = try Fleet(communes: [70], clockSkews: [70: 600_000])
        defer { fleet.shutdown() }
        let site = fleet.sites[0]
        try fleet.startSite(site)
        #expect(eventually { abs(site.store.clockOffset + 600_000) < 5_000 })
        #expect(eventually { site.client?.status.clockOffsetMilliseconds.map { abs($0 + 600_000) < 5_000 } ?? false })
        try recordResults(site.store, commune: site.commune, first: 0, count: 10)
        site.client?.wake()
        #expect(try eventually { try fleet.hubHasAll(of: site) })
        #expect(try fleet.hubStore.count("attempt") == 10)
        #expect(fleet.hub.stats.changesQuarantined == 0)
        // Persisted: another process (an import) or a restart uses the same correction.
        let again = try NodeStore(path: fleet.dir.file("site-70.sqlite"), identity: site.identity)
        #expect(abs(again.clockOffset + 600_000) < 5_000)
    }

    @Test("a site process killed with SIGKILL mid-upload and restarted: nothing lost, nothing duplicated")
    func killNineMidUpload() throws {
        // One message per hub transaction (one fsync each): the upload takes long enough to be
        // caught mid-way even on a loaded machine.
        let fleet = try Fleet(communes: [70, 73], hub: { $0.maxMessagesPerTransaction = 1 })
        defer { fleet.shutdown() }
        let victim = fleet.sites[0], other = fleet.sites[1]
        let n = 4_000
        try recordResults(victim.store, commune: victim.commune, first: 0, count: n)
        try recordResults(other.store, commune: other.commune, first: 100_000, count: 50)
        try fleet.startSite(other)
        let origin = try victim.origin
        let process = try fleet.siteProcess(victim)
        // Kill once the hub holds part of the site's changes, not all (4 changes per result).
        let started = try eventually(30) { let seq = try fleet.hubStore.versionVector()[origin]; return seq > 0 }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(started && process.terminationReason == .uncaughtSignal)
        let atKill = try fleet.hubStore.versionVector()[origin]
        #expect(atKill < UInt64(4 * n), "the upload finished before the kill; the test needs more data")

        try fleet.startSite(victim)
        #expect(try eventually(60) { try fleet.hubHasAll(of: victim) && fleet.hubHasAll(of: other) })
        #expect(try fleet.hubStore.count("learner") == n + 50)
        #expect(try fleet.hubStore.count("attempt") == n + 50)
        #expect(try fleet.hubStore.count("progress") == n + 50)
        #expect(fleet.hub.stats.changesQuarantined == 0 && fleet.hub.stats.alerts.isEmpty)
    }

    @Test("results from three sites reach the hub exactly, survive a site restart and a hub restart")
    func threeSites() throws {
        let fleet = try Fleet(communes: [70, 73, 4])
        defer { fleet.shutdown() }
        for (i, s) in fleet.sites.enumerated() {
            try recordResults(s.store, commune: s.commune, first: i * 1_000, count: 20)
            try fleet.startSite(s)
        }
        #expect(try eventually { try fleet.sites.allSatisfy(fleet.hubHasAll) })
        #expect(try fleet.hubStore.count("learner") == 60)
        #expect(try fleet.hubStore.count("attempt") == 60)
        // The hub publishes who is connected at most once a second (a fleet reconnecting at once made it
        // a pass over every site per loop round).
        #expect(try eventually { fleet.hub.stats.connectedCommunes == [70, 73, 4] })

        // Live: a new result is at the hub within a second or so.
        let s0 = fleet.sites[0]
        try recordResults(s0.store, commune: s0.commune, first: 500, count: 1)
        s0.client?.wake()
        #expect(try eventually(3) { try fleet.hubStore.count("learner") == 61 })

        // Batches sealed by someone else (another process, a CLI import) are uploaded too:
        // the site decides from what its store holds, not from who sealed it.
        try recordResults(s0.store, commune: s0.commune, first: 550, count: 1)
        try s0.store.sealPending()
        s0.client?.wake()
        #expect(try eventually(3) { try fleet.hubStore.count("learner") == 62 })

        // A site killed and restarted resumes without resending what was acknowledged.
        s0.client?.stop()
        try recordResults(s0.store, commune: s0.commune, first: 600, count: 5)
        let appliedBefore = fleet.hub.stats.batchesApplied
        try fleet.startSite(s0)
        #expect(try eventually { try fleet.hubHasAll(of: s0) })
        #expect(try fleet.hubStore.count("learner") == 67)
        #expect(fleet.hub.stats.batchesApplied - appliedBefore >= 1)
        #expect(try fleet.hubStore.count("attempt") == 67)

        // The hub restarts on the same port and database; sites reconnect and carry on.
        let port = fleet.endpoint
        fleet.hub.stop()
        fleet.hub = HubServer(
            store: fleet.hubStore, configuration: .init(bind: port, transportKeys: fleet.hubKeys), logger: quietLogger)
        _ = try fleet.hub.start()
        try recordResults(fleet.sites[1].store, commune: 73, first: 1_700, count: 3)
        fleet.sites[1].client?.wake()
        #expect(try eventually(15) { try fleet.hubHasAll(of: fleet.sites[1]) })
        #expect(try fleet.hubStore.count("learner") == 70)
    }

    @Test("replays are no-ops, another site's batches are refused, junk is dropped while others sync")
    func hostileInput() throws {
        let fleet = try Fleet(communes: [70, 73, 4])
        defer { fleet.shutdown() }
        let a = fleet.sites[0], b = fleet.sites[1], c = fleet.sites[2]
        try recordResults(a.store, commune: a.commune, first: 0, count: 3)
        try recordResults(b.store, commune: b.commune, first: 100, count: 3)
        try a.store.sealPending()
        try b.store.sealPending()
        let context = try ZMQContext()
        let raw = try rawClient(fleet, a, context: context)
        defer { raw.close() }
        // HELLO first; then a's batches.
        _ = try raw.send(WireCodec.encode(.hello(.init(origin: try a.origin, clockMilliseconds: 0, releaseVersion: 1, knowledge: .init())), id: 1))
        guard case .welcome? = try receive(raw) else { Issue.record("no WELCOME"); return }
        let batchesA = try a.store.batches(after: VersionVector())
        _ = try raw.send(WireCodec.encode(.batches(batchesA), id: 2))
        guard case .ack(let ack1)? = try receive(raw) else { Issue.record("no ACK"); return }
        let originA = try a.origin
        #expect(ack1.refused.isEmpty && ack1.have[originA] == batchesA.last!.lastSeq)
        let digest = try fleet.hubStore.stateDigest()
        // Replay: acknowledged again, changes nothing.
        _ = try raw.send(WireCodec.encode(.batches(batchesA), id: 3))
        guard case .ack(let ack2)? = try receive(raw) else { Issue.record("no ACK"); return }
        #expect(ack2.refused.isEmpty && ack2.ackedMessageID == 3)
        #expect(try fleet.hubStore.stateDigest() == digest)
        // Site A uploads B's (validly signed) batches: refused, not merged.
        let batchesB = try b.store.batches(after: VersionVector())
        _ = try raw.send(WireCodec.encode(.batches(batchesB), id: 4))
        guard case .ack(let ack3)? = try receive(raw) else { Issue.record("no ACK"); return }
        #expect(ack3.refused.count == batchesB.count && ack3.refused[0].code == "not_own_origin")
        #expect(try fleet.hubStore.stateDigest() == digest)
        // Junk: wrong frame count, oversized payload, garbage, unknown major. Dropped and counted.
        _ = try raw.send([Data("one frame".utf8)])
        _ = try raw.send([Data([1]), Data([2]), Data([3])])
        _ = try raw.send([WireCodec.encode(.batches([]), id: 5)[0], Data([0xFF, 0xFF])])
        var v2 = WireCodec.encode(.batches([]), id: 6)
        v2[0][1] = 0x02
        _ = try raw.send(v2)
        guard case .refuse(.unsupportedVersion, _, _)? = try receive(raw) else { Issue.record("no refusal of major 2"); return }
        // Meanwhile the real site C syncs normally.
        try recordResults(c.store, commune: c.commune, first: 200, count: 4)
        try fleet.startSite(c)
        #expect(try eventually { try fleet.hubHasAll(of: c) })
        let dropped = fleet.hub.stats.dropped
        #expect(dropped["wrong_frame_count", default: 0] == 2)
        #expect(dropped["malformed", default: 0] == 1)
        #expect(dropped["unsupported_version", default: 0] == 1)
        // Per site and reason: all of it is charged to site A, the batches of B as not its own.
        let refusals = fleet.hub.stats.refusals
        #expect(refusals[RefusalKey(commune: a.commune, reason: "not_own_origin")] == batchesB.count)
        #expect(refusals[RefusalKey(commune: a.commune, reason: "wrong_frame_count")] == 2)
    }

    @Test("an unknown key is refused at connect; a revoked site is refused and told so")
    func unknownAndRevoked() throws {
        let fleet = try Fleet(communes: [70, 73])
        defer { fleet.shutdown() }
        // A stranger with keys nobody enrolled.
        let context = try ZMQContext()
        let stranger = try ZMQSocket(context, .dealer)
        let keys = BoxKeyPair.generate()
        try stranger.makeCurveClient(publicKey: keys.publicKey, secretKey: keys.secretKey, serverKey: fleet.hubKeys.publicKey)
        try stranger.connect(fleet.endpoint)
        _ = try stranger.send(WireCodec.encode(.hello(.init(origin: try fleet.sites[0].origin, clockMilliseconds: 0, releaseVersion: 0, knowledge: .init())), id: 1))
        #expect(try eventually(3) { fleet.hub.stats.zapDenied >= 1 })
        #expect(try receive(stranger, seconds: 1) == nil)
        #expect(fleet.hub.stats.messagesReceived == 0)
        stranger.close()

        // A connected site that is revoked hears so and stops; its new results never land.
        let s = fleet.sites[0]
        try recordResults(s.store, commune: s.commune, first: 0, count: 2)
        try fleet.startSite(s)
        #expect(try eventually { try fleet.hubHasAll(of: s) })
        try fleet.hubStore.revoke(communeCode: s.commune)
        #expect(try eventually { s.client?.status.refused != nil })
        try recordResults(s.store, commune: s.commune, first: 50, count: 2)
        Thread.sleep(forTimeInterval: 0.5)
        #expect(try fleet.hubStore.count("learner") == 2)
        // And it cannot come back with the same keys: the handshake is refused.
        let before = fleet.hub.stats.zapDenied
        let again = try rawClient(fleet, s, context: context)
        _ = try again.send(WireCodec.encode(.hello(.init(origin: try s.origin, clockMilliseconds: 0, releaseVersion: 0, knowledge: .init())), id: 1))
        #expect(try eventually(3) { fleet.hub.stats.zapDenied > before })
        again.close()
    }
}
