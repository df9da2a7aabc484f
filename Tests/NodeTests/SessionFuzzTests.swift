import Foundation
import Logging
import Merge
import Model
import Node
import Release
import Sodium
import Store
import SwiftProtobuf
import TestSupport
import Testing
import Transport
@testable import Wire

/// Stateful session fuzzing (issue 9): whole sessions of hostile messages from an enrolled peer,
/// against a real hub and a real site over CURVE on tcp loopback, with real keys and SQLite files.
///
/// Properties: nothing traps (a trap kills the test process: the crash handler prints the seed and
/// this round's messages, see ``FuzzJournal``); the engines keep running (`isAlive`); an honest
/// site's results still reach the hub and the hub's figures for its commune equal the site's own;
/// a site never runs on a clock more than 24 h from its own.
///
/// Reproduce: `HOCVU_FUZZ_SEED=… HOCVU_FUZZ_ROUNDS=… swift test --filter SessionFuzzTests`
/// (see ``FuzzSettings``); every failure prints the exact command for its round.
@Suite("Stateful session fuzzing: hostile peers against a real hub and a real site", .serialized)
struct SessionFuzzTests {
    // MARK: - Hostile site → real hub

    @Test("a hostile enrolled site never stops the hub, and an honest site's results still arrive")
    func hostileSiteAgainstHub() throws {
        let settings = FuzzSettings(defaultRounds: 100)
        let started = Date()
        let tmp = try TemporaryDirectory(prefix: "hocvu-fuzz-hub")
        defer { tmp.remove() }
        let fx = try ReleaseFixture(root: tmp.path, mediaBytes: 96 << 10)
        let fleet = try fuzzFleet(fx)
        defer { fleet.shutdown() }
        let v2 = try fx.build(version: 2)
        var publisher = ReleasePublisher(
            hubEndpoint: fleet.endpoint, hubTransportKey: fleet.hubKeys.publicKey, transportKeys: fx.admins[0].transport,
            logger: quietLogger)
        publisher.idleTimeoutSeconds = 10
        _ = try publisher.publish(v2)

        let honest = fleet.sites[0], hostileSite = fleet.sites[1]
        try recordResults(honest.store, commune: honest.commune, first: 0, count: 5)
        try fleet.startSite(honest)
        let hostile = try HostileSite(
            fleet: fleet, me: hostileSite, honest: honest, fixture: fx, release: v2, settings: settings)
        defer { hostile.close() }

        func fail(_ round: Int, _ what: String) {
            let text = """
                Session fuzzer (hub): \(what)
                \(settings); replay: \(settings.replay(test: "SessionFuzzTests/hostileSiteAgainstHub", round: round))
                --- the round before ---
                \(FuzzJournal.previousRound)
                --- messages of round \(round) ---
                \(FuzzJournal.contents())
                """
            print(text)
            Issue.record(Comment(rawValue: text))
        }

        for round in settings.roundRange {
            var r = FuzzRandom(g: settings.generator(round: round, salt: 0x4855_4221))
            FuzzJournal.begin(
                "hub fuzz \(settings) round=\(round); replay: \(settings.replay(test: "SessionFuzzTests/hostileSiteAgainstHub", round: round))")
            if round % 3 == 0 {
                try recordResults(honest.store, commune: honest.commune, first: 1_000 + round, count: 1)
                honest.client?.wake()
            }
            try hostile.session(&r, round: round)
            if fleet.hub.hasFinished || !fleet.hub.isAlive {
                fail(round, "the hub's loop stopped (hasFinished=\(fleet.hub.hasFinished), isAlive=\(fleet.hub.isAlive))")
                return
            }
            if let c = honest.client, c.hasFinished || !c.isAlive {
                fail(round, "the honest site's loop stopped (refused: \(c.status.refused ?? "-"))")
                return
            }
            FuzzJournal.end()
        }
        let fuzzed = Date().timeIntervalSince(started)

        // Honest data still arrives, and the hub's figures for the honest commune are the site's own.
        FuzzJournal.begin("hub fuzz \(settings): final check (no messages sent)")
        try recordResults(honest.store, commune: honest.commune, first: 5_000, count: 3)
        honest.client?.wake()
        let synced = try eventually(30) { try fleet.hubHasAll(of: honest) }
        let hubFigures = { try fleet.hubStore.nationalReport().communes.first { $0.code == honest.commune }?.figures }
        let siteFigures = { try honest.store.nationalReport().communes.first { $0.code == honest.commune }?.figures }
        let same = try eventually(30) { try hubFigures() == siteFigures() && siteFigures() != nil }
        if !synced || !same || fleet.hub.hasFinished {
            let hub = try hubFigures(), own = try siteFigures()
            fail(settings.firstRound + settings.rounds - 1, """
                after fuzzing: hub holds all of the honest site's batches: \(synced); \
                hub figures for commune \(honest.commune): \(String(describing: hub)); \
                the site's own: \(String(describing: own)); hub finished: \(fleet.hub.hasFinished)
                """)
        }
        FuzzJournal.end()
        let stats = fleet.hub.stats
        print("""
            Session fuzzer (hub): \(settings), \(hostile.sent) messages in \(String(format: "%.1f", fuzzed)) s; \
            hub received \(stats.messagesReceived), dropped \(stats.dropped.sorted { $0.key < $1.key }), \
            batches applied \(stats.batchesApplied), refused \(stats.batchesRefused), changes merged \(stats.changesMerged), quarantined \(stats.changesQuarantined); \
            release at the hub \(Boundary.show(stats.releaseVersion)), releases refused \(stats.releasesRefused)
            """)
    }

    // MARK: - Hostile hub → real site

    @Test("a hostile hub never stops a site, nor moves its clock more than a day; the site still uploads afterwards")
    func hostileHubAgainstSite() throws {
        let settings = FuzzSettings(defaultRounds: 50)
        let started = Date()
        let tmp = try TemporaryDirectory(prefix: "hocvu-fuzz-site")
        defer { tmp.remove() }
        let fx = try ReleaseFixture(root: tmp.path, mediaBytes: 64 << 10)
        let v2 = try fx.build(version: 2)
        let rig = try SiteRig(tmp: tmp, fx: fx)
        let fake = rig.fake, site = rig.site, config = rig.config
        defer { fake.close() }
        func startClient() throws -> SiteClient {
            let c = try SiteClient(store: site.store, configuration: config, logger: JournalLogHandler.logger("site"))
            try c.start()
            return c
        }
        var client = try startClient()
        defer { client.stop() }
        let hostile = try HostileHub(
            fake: fake, site: site, identity: rig.hubIdentity, fixture: fx, release: v2, feed: rig.feed, settings: settings)

        func fail(_ round: Int, _ what: String) {
            let text = """
                Session fuzzer (site): \(what)
                \(settings); replay: \(settings.replay(test: "SessionFuzzTests/hostileHubAgainstSite", round: round))
                --- the round before ---
                \(FuzzJournal.previousRound)
                --- messages of round \(round) ---
                \(FuzzJournal.contents())
                """
            print(text)
            Issue.record(Comment(rawValue: text))
        }
        let day: Int64 = 86_400_000

        for round in settings.roundRange {
            var r = FuzzRandom(g: settings.generator(round: round, salt: 0x5349_5445))
            FuzzJournal.begin(
                "site fuzz \(settings) round=\(round); replay: \(settings.replay(test: "SessionFuzzTests/hostileHubAgainstSite", round: round))")
            let outcome = try hostile.session(&r, round: round, client: client)
            if case .noHello = outcome {
                fail(round, "the site did not say HELLO within 5 s of a new connection (alive: \(client.isAlive), finished: \(client.hasFinished)); status: \(client.status)")
                return
            }
            if client.hasFinished || !client.isAlive {
                if case .fatalRefusalSent = outcome, client.status.refused != nil {
                    FuzzJournal.note("   (the site stopped on the fatal REFUSE, as it must; restarting it)")
                    client.stop()
                    client = try startClient()
                } else {
                    fail(round, "the site's loop stopped (refused: \(client.status.refused ?? "-"))")
                    return
                }
            }
            if !hostile.refusedByHubCodec.isEmpty {
                fail(round, "the site sent what a real hub's decoder refuses (it cannot sync): \(hostile.refusedByHubCodec[0])")
                return
            }
            let offset = site.store.clockOffset
            if !settings.avoid("offset"), offset == Int64.min || abs(offset) > day {
                fail(round, "the site adopted a clock offset of \(offset) ms (more than ±24 h)")
                return
            }
            FuzzJournal.end()
        }
        let fuzzed = Date().timeIntervalSince(started)

        // The hub behaves again: the site uploads everything it holds, and its persisted offset is sane.
        FuzzJournal.begin("site fuzz \(settings): final honest session")
        try recordOnSiteClock(site.store, commune: site.commune, first: 9_000)
        client.wake()
        let uploaded = try hostile.honestSession(client: client, seconds: 20)
        let persisted = try NodeStore(path: tmp.file("site-70.sqlite"), identity: site.identity).clockOffset
        if !uploaded || (!settings.avoid("offset") && (persisted == Int64.min || abs(persisted) > day)) || client.hasFinished {
            fail(settings.firstRound + settings.rounds - 1, """
                after fuzzing: site uploaded all its batches to an honest hub: \(uploaded); \
                persisted clock offset \(persisted) ms; site loop finished: \(client.hasFinished)
                """)
        }
        FuzzJournal.end()
        print("Session fuzzer (site): \(settings), \(hostile.sent) messages in \(String(format: "%.1f", fuzzed)) s")
    }
}

/// Records one learner's results stamped on the site's own (hub-corrected) clock, as its learning
/// app would: after a WELCOME moved the clock, system-clock times could be "in the future".
/// The site's loop may adopt another offset between reading the clock and recording: try again.
func recordOnSiteClock(_ store: NodeStore, commune: Int, first i: Int) throws {
    let id = try store.register(i, commune: commune)
    for attempt in 1...3 {
        let now = store.systemTime() + store.clockOffset
        do {
            try store.record([
                .enroll(learnerID: id, courseID: "ksn-101"),
                .progress(learnerID: id, lessonID: "ksn-101-l1", percent: 100, at: now),
                .attempt(learnerID: id, quizID: "ksn-101-quiz", answers: [0, 1, 2, 3, 0], score: 8, maxScore: 10,
                         startedAt: now - 60_000, finishedAt: now),
            ])
            return
        } catch let e as RecordValidationError where attempt < 3 {
            FuzzJournal.note("   (recording raced a clock change: \(e); again)")
            usleep(50_000)
        }
    }
}

/// A hub with two enrolled sites (70, 73) that takes releases from `fx`'s admins and logs into
/// the journal (why its loop stopped, if it does, is on record next to the message that did it).
/// One transfer slot: a hostile site holding it makes TRY_LATER reachable.
func fuzzFleet(_ fx: ReleaseFixture) throws -> Fleet {
    let fleet = try Fleet(communes: [70, 73]) { dir in HubServer.ReleaseSettings(trust: fx.trust, chunkDirectory: dir) }
    fleet.siteFetch = { var c = $0; c.fetchTimeoutMilliseconds = 1_000; return c }
    fleet.hub.stop()
    var hubConfig = HubServer.Configuration(bind: fleet.endpoint, transportKeys: fleet.hubKeys)
    hubConfig.identity = fleet.hubIdentity
    var r = HubServer.ReleaseSettings(trust: fx.trust, chunkDirectory: fleet.dir.file("hub-chunks"))
    r.maxConcurrentTransfers = 1
    r.transferIdleMilliseconds = 500
    r.retryAfterSeconds = 1
    hubConfig.releases = r
    fleet.hub = HubServer(store: fleet.hubStore, configuration: hubConfig, logger: JournalLogHandler.logger("hub"))
    _ = try fleet.hub.start()
    return fleet
}

// MARK: - The hostile site's sessions

/// A raw DEALER with an enrolled site's keys, sending whole sessions of hostile messages.
final class HostileSite {
    let fleet: Fleet
    let me: Fleet.Site
    let honest: Fleet.Site
    let context: ZMQContext
    var socket: ZMQSocket
    let offer: SignedRelease
    let chunkNames: [String]
    let settings: FuzzSettings
    let names: [Data: String]
    /// A publishing admin's connection (admitted by the trust file's transport keys).
    let admin: ZMQSocket
    let fixture: ReleaseFixture
    let release: ReleaseBundle
    let baseManifest: Manifest
    var nextID: UInt64 = 1
    var sent = 0
    /// What the hub said it holds of our origins (WELCOME, ACK).
    var hubHas = VersionVector()
    var learners = 0

    init(fleet: Fleet, me: Fleet.Site, honest: Fleet.Site, fixture: ReleaseFixture, release: ReleaseBundle, settings: FuzzSettings) throws {
        self.fleet = fleet
        self.me = me
        self.honest = honest
        self.fixture = fixture
        self.release = release
        offer = try release.signed()
        baseManifest = try Manifest.decode(release.manifestBytes())
        chunkNames = baseManifest.chunks.map(\.hash)
        self.settings = settings
        context = try ZMQContext()
        socket = try rawClient(fleet, me, context: context)
        admin = try ZMQSocket(context, .dealer)
        let keys = fixture.admins[1].transport
        try admin.makeCurveClient(publicKey: keys.publicKey, secretKey: keys.secretKey, serverKey: fleet.hubKeys.publicKey)
        try admin.connect(fleet.endpoint)
        names = [me.identity.publicKey: "own", honest.identity.publicKey: "honest", fleet.hubIdentity.publicKey: "hub"]
    }

    func close() {
        socket.close()
        admin.close()
    }

    var own: Data { me.identity.publicKey }

    func reconnect() throws {
        FuzzJournal.note("-- reconnect (new connection: the hub forgets the session)")
        socket.close()
        socket = try rawClient(fleet, me, context: context)
    }

    private func id(_ r: inout FuzzRandom) -> UInt64 {
        defer { nextID += 1 }
        return r.chance(0.85) ? nextID : r.u64()
    }

    /// One session: mostly HELLO first, then a random run of actions.
    func session(_ r: inout FuzzRandom, round: Int) throws {
        if r.chance(0.15) { try reconnect() }
        if r.chance(0.8) { try send(hello(&r, plausible: r.chance(0.6)), expectReply: true) }
        for _ in 0..<r.int(2...10) {
            if fleet.hub.hasFinished { return }
            switch r.int(0..<100) {
            case 0..<16: try honestUpload(&r)
            case 16..<40: try send(signedBatches(&r), expectReply: true)
            case 40..<48: try send(forgedBatches(&r), expectReply: true)
            case 48..<55: try send(hello(&r, plausible: r.bool()), expectReply: true)
            case 55..<64: try send(chunkRequest(&r), expectReply: false)
            case 64..<77: try send(wrongWay(&r), expectReply: false)
            case 77..<87: try send(junk(&r), expectReply: false)
            case 87..<95: try send(mutated(&r), expectReply: false)
            case 95..<97: try reconnect()
            case 97..<99: try adminPublishes(&r)
            default:
                // A burst: several messages in one hub round (one merge transaction).
                let burst = (0..<r.int(2...6)).map { _ in r.bool() ? signedBatches(&r) : hello(&r, plausible: true) }
                try send(burst)
            }
        }
        drain(milliseconds: 20)
    }

    // MARK: sending

    func send(_ m: FuzzMessage, expectReply: Bool, via: ZMQSocket? = nil) throws { try send([m], expectReply: expectReply, via: via) }

    /// Sends, then waits until the hub has taken every message off its socket and (when a reply is
    /// due) answered or counted a drop, so the journal's last line is what the hub last handled.
    func send(_ ms: [FuzzMessage], expectReply: Bool = true, via: ZMQSocket? = nil) throws {
        let before = progress()
        var queued = 0
        for m in ms {
            FuzzJournal.note("→ hub  " + (via == nil ? "" : "(admin) ") + m.journalLine)
            if try (via ?? socket).send(m.frames) { queued += 1 } else { FuzzJournal.note("   (not queued: would block)") }
            sent += 1
        }
        guard queued > 0 else { return }
        let end = Date().addingTimeInterval(2)
        while progress().received < before.received + queued, Date() < end, !fleet.hub.hasFinished { usleep(500) }
        let taken = progress().received - before.received
        if taken < queued { FuzzJournal.note("   (hub took \(taken) of \(queued) within 2 s: dropped by the transport?)") }
        var replies = 0
        let replyEnd = Date().addingTimeInterval(expectReply ? 0.4 : 0.01)
        repeat {
            replies += drain(milliseconds: 1)
            if expectReply, replies + (progress().dropped - before.dropped) >= queued { break }
        } while Date() < replyEnd && !fleet.hub.hasFinished
        // Chain batches never acknowledged were not taken: the next one extends the last accepted.
        pendingChains.removeAll()
    }

    private func progress() -> (received: Int, dropped: Int) {
        let s = fleet.hub.stats
        return (s.messagesReceived, s.dropped.values.reduce(0, +))
    }

    /// Reads and journals the hub's replies; learns what the hub holds.
    @discardableResult
    func drain(milliseconds: Int) -> Int {
        var n = 0
        let end = Date().addingTimeInterval(Double(milliseconds) / 1_000)
        repeat {
            _ = try? zmqPoll([socket], timeoutMilliseconds: 1)
            while let m = try? socket.receive() {
                n += 1
                guard let (id, message) = try? WireCodec.decode(m.frames) else {
                    FuzzJournal.note("← hub  (undecodable reply, \(m.frames.count) frames)")
                    continue
                }
                switch message {
                case .welcome(let w): hubHas = hubHas.merged(with: w.have)
                case .ack(let a):
                    hubHas = hubHas.merged(with: a.have)
                    acknowledged(a.ackedMessageID, have: a.have)
                default: break
                }
                FuzzJournal.note("← hub  id=\(id) " + String(String(describing: message).prefix(300)))
            }
        } while Date() < end
        return n
    }

    /// A trusted admin publishes a hostile (but validly k-of-n signed) release, and answers the
    /// hub's chunk requests (mostly with the real chunks) until it hears PUBLISHED or REFUSE.
    func adminPublishes(_ r: inout FuzzRandom) throws {
        let (p, label) = HostileReleases.offer(
            &r, base: baseManifest, baseBytes: offer.manifestBytes, current: fleet.hub.stats.releaseVersion,
            admins: fixture.admins.map(\.signing), threshold: fixture.trust.threshold, settings: settings)
        try send(Raw.message(.releaseOffer, id: id(&r), Raw.serialize(p), label: label), expectReply: false, via: admin)
        let chunks = try release.chunkStore()
        let end = Date().addingTimeInterval(1.5)
        while Date() < end, !fleet.hub.hasFinished {
            _ = try zmqPoll([admin], timeoutMilliseconds: 10)
            while let m = try admin.receive() {
                guard let (_, message) = try? WireCodec.decode(m.frames) else { continue }
                FuzzJournal.note("← hub  (to admin) " + String(String(describing: message).prefix(200)))
                switch message {
                case .chunkRequest(let names):
                    for name in names {
                        var c = Hocvu_Wire_V1_Chunk()
                        c.hash = Data(hex: name) ?? Data()
                        c.data = r.chance(0.85) ? ((try? chunks.read(name)) ?? Data()) : r.bytes(upTo: 500)
                        try send(Raw.message(.chunk, id: 0, Raw.serialize(c), label: "{\(name.prefix(8))… \(c.data.count) bytes}"), expectReply: false, via: admin)
                    }
                case .published, .refuse: return
                default: break
                }
            }
        }
    }

    // MARK: messages

    func hello(_ r: inout FuzzRandom, plausible: Bool) -> FuzzMessage {
        let origin = (try? me.origin) ?? Origin(node: NodeID(bytes: own)!, epoch: 0)
        let avoid = settings.avoid("seq63")
        var p = Hocvu_Wire_V1_Hello()
        if plausible {
            p.node = own
            p.epoch = origin.epoch
            p.clockMs = NodeStore.systemNow()
            p.releaseVersion = r.pick([0, 1, 2, 3])
            p.knowledge = ((try? me.store.versionVector()) ?? VersionVector()).entries.map {
                Raw.originSeq(node: $0.key.node.bytes, epoch: $0.key.epoch, seq: $0.value)
            }
            p.wantsHomeFeed = r.bool()
            p.homeFeedCursor = p.wantsHomeFeed ? UInt64(r.int(0...3)) : 0
            if r.chance(0.3) { p.homeFeedCursor = r.u64(avoidAbove63: avoid) }
        } else {
            p.node = r.chance(0.75) ? own : r.pick([honest.identity.publicKey, r.bytes(32), r.bytes(upTo: 40), Data()])
            p.epoch = r.chance(0.5) ? origin.epoch : r.u64()
            p.clockMs = r.i64(near: NodeStore.systemNow())
            p.releaseVersion = r.u64(near: 2, avoidAbove63: avoid)
            p.knowledge = (0..<r.int(0...3)).map { _ in
                Raw.originSeq(
                    node: r.chance(0.7) ? own : r.bytes(r.pick([0, 31, 32, 33])), epoch: r.chance(0.5) ? origin.epoch : r.u64(),
                    seq: r.u64(avoidAbove63: avoid))
            }
            p.wantsHomeFeed = r.chance(0.7)
            p.homeFeedCursor = r.u64(avoidAbove63: avoid)
        }
        let label = "{node=\(names[p.node] ?? "bytes(\(p.node.count))") epoch=\(Boundary.show(p.epoch)) clock_ms=\(Boundary.show(p.clockMs)) "
            + "release=\(Boundary.show(p.releaseVersion)) knowledge=\(Raw.show(p.knowledge, names: names)) "
            + "wants_home_feed=\(p.wantsHomeFeed) home_feed_cursor=\(Boundary.show(p.homeFeedCursor))}"
        return Raw.message(.hello, id: id(&r), Raw.serialize(p), label: label)
    }

    /// The hostile site records (as a real site would) and uploads its own next batches properly.
    func honestUpload(_ r: inout FuzzRandom) throws {
        learners += 1
        // Now and then a visitor from the honest commune: its records go home through the feed.
        let commune = r.chance(0.2) ? honest.commune : me.commune
        try recordResults(me.store, commune: commune, first: 700_000 + learners, count: 1)
        try me.store.sealPending()
        var batches = try me.store.ownBatches(after: hubHas, maxBytes: 200_000)
        if batches.isEmpty { batches = try me.store.ownBatches(after: VersionVector(), maxBytes: 200_000) }  // a replay
        var p = Hocvu_Wire_V1_Batches()
        p.batches = batches.map(Self.raw)
        try send(Raw.message(.batches, id: id(&r), Raw.serialize(p), label: "own sealed batches " + batches.map(describe).joined(separator: " ")), expectReply: true)
    }

    static func raw(_ b: Batch) -> Hocvu_Wire_V1_Batch {
        var x = Hocvu_Wire_V1_Batch()
        x.node = b.origin.node.bytes
        x.epoch = b.origin.epoch
        x.firstSeq = b.firstSeq
        x.lastSeq = b.lastSeq
        x.previousID = b.previousID
        x.body = b.body
        x.signature = b.signature
        return x
    }

    func describe(_ b: Batch) -> String {
        "[\(names[b.origin.node.bytes] ?? "node")/\(Boundary.show(b.origin.epoch)) \(Boundary.show(b.firstSeq))…\(Boundary.show(b.lastSeq)) body=\(b.body.count)B]"
    }

    /// Batches signed by this site's own identity key, with headers and bodies mutated.
    func signedBatches(_ r: inout FuzzRandom) -> FuzzMessage {
        building = id(&r)
        let count = r.chance(0.03) ? r.pick([256, 257]) : (r.chance(0.7) ? 1 : r.int(2...4))
        var first = signedBatch(&r)
        var parts = [first.label]
        var p = Hocvu_Wire_V1_Batches()
        p.batches = [first.batch]
        for _ in 1..<max(1, count) {
            if count > 4 { p.batches.append(first.batch); continue }  // the same one, many times
            first = signedBatch(&r)
            p.batches.append(first.batch)
            parts.append(first.label)
        }
        let label = count > 4 ? "\(count) × " + parts[0] : parts.joined(separator: " ")
        return Raw.message(.batches, id: building, Raw.serialize(p), label: "signed " + label)
    }

    func signedBatch(_ r: inout FuzzRandom) -> (batch: Hocvu_Wire_V1_Batch, label: String) {
        r.chance(0.45) ? chainBatch(&r) : wildBatch(&r)
    }

    /// Origins (epochs of our own node) whose hash chain the hub accepted, and batches sent on them
    /// not yet acknowledged (by message id): the next batch extends the chain, so its changes are
    /// merged. A chain the hub did not extend (refused, origin quarantined) is replaced by a new epoch.
    var chainEpochs: [UInt64] = [3, 0x8000_0000_0000_0005, 0xC4A1_0000_0000_0007]
    var chains: [Origin: (seq: UInt64, id: Data)] = [:]
    var pendingChains: [(message: UInt64, origin: Origin, seq: UInt64, id: Data)] = []
    /// The id the message being built will carry (set by ``id(_:)``'s caller before building batches).
    var building: UInt64 = 0
    lazy var spareRandom = SeededGenerator(seed: settings.seed ^ 0xC4A1_C4A1)

    func chainHead(_ origin: Origin) -> (seq: UInt64, id: Data) {
        if let p = pendingChains.last(where: { $0.origin == origin }) { return (p.seq, p.id) }
        return chains[origin] ?? (0, Batch.zeroID)
    }

    /// An ACK for message `id`: the chains it extended move on; the others start over on a new epoch.
    func acknowledged(_ id: UInt64, have: VersionVector) {
        for p in pendingChains where p.message == id {
            if have[p.origin] >= p.seq {
                chains[p.origin] = (p.seq, p.id)
            } else if let i = chainEpochs.firstIndex(of: p.origin.epoch) {
                chainEpochs[i] = spareRandom.next()
                FuzzJournal.note("   (chain \(Boundary.show(p.origin.epoch)) not extended: continuing on epoch \(chainEpochs[i]))")
            }
        }
        pendingChains.removeAll { $0.message == id || !chainEpochs.contains($0.origin.epoch) }
    }

    /// A well-formed batch that extends one of our chains, carrying hostile changes.
    func chainBatch(_ r: inout FuzzRandom) -> (batch: Hocvu_Wire_V1_Batch, label: String) {
        let origin = Origin(node: NodeID(bytes: own)!, epoch: r.pick(chainEpochs))
        let head = chainHead(origin)
        let now = NodeStore.systemNow()
        var changes = [Change]()
        for _ in 0..<r.int(1...4) {
            let learner = r.int(0...50)
            changes.append(HostileChanges.change(&r, learner: learner, commune: me.commune, now: now, settings: settings))
        }
        let unsigned = Batch(
            origin: origin, firstSeq: head.seq + 1, lastSeq: head.seq + UInt64(changes.count), previousID: head.id,
            body: Data(ChangeCodec.encode(changes)), signature: Data(count: 64))
        var x = Self.raw(unsigned)
        x.signature = me.identity.sign(unsigned.header)
        pendingChains.append((building, origin, unsigned.lastSeq, unsigned.id))
        return (x, "[own/\(Boundary.show(origin.epoch)) \(unsigned.firstSeq)…\(unsigned.lastSeq) extends the chain: "
            + changes.map(HostileChanges.show).joined(separator: ", ") + "]")
    }

    /// A batch signed by us with its header and body mutated.
    func wildBatch(_ r: inout FuzzRandom) -> (batch: Hocvu_Wire_V1_Batch, label: String) {
        let origin = (try? me.origin) ?? Origin(node: NodeID(bytes: own)!, epoch: 0)
        let real = ((try? me.store.ownBatches(after: VersionVector(), maxBytes: 1 << 20)) ?? []).filter { $0.origin == origin }
        let base = r.chance(0.5) ? real.isEmpty ? nil : r.pick(real) : nil
        var changes = [Change]()
        var body: Data
        if let base {
            body = base.body
        } else {
            let now = NodeStore.systemNow()
            for _ in 0..<r.int(1...4) {
                let learner = r.int(0...50)
                changes.append(HostileChanges.change(&r, learner: learner, commune: me.commune, now: now, settings: settings))
            }
            body = Data(ChangeCodec.encode(changes))
        }
        let claimed = UInt64(base.map(\.changeCount) ?? changes.count)
        let epoch = r.chance(0.7) ? origin.epoch : r.u64()
        var first: UInt64 = switch r.int(0..<4) {
        case 0: base?.firstSeq ?? hubHas[origin] + 1
        case 1: hubHas[Origin(node: origin.node, epoch: epoch)] + 1
        default: r.u64(near: hubHas[origin] + 1)
        }
        var last: UInt64 = switch r.int(0..<5) {
        case 0, 1: first &+ claimed &- 1
        case 2: first
        default: r.u64(near: first)
        }
        if settings.avoid("seq63") {
            first = min(first, (1 << 63) - 2)
            last = min(last, (1 << 63) - 1)
        }
        if settings.avoid("range"), last >= first, last - first >= 20_000 { last = first + UInt64(r.int(0..<20_000)) }
        let previous: Data = switch r.int(0..<5) {
        case 0, 1, 2: base?.previousID ?? (real.last?.id ?? Batch.zeroID)
        case 3: Batch.zeroID
        default: r.bytes(32)
        }
        switch r.int(0..<20) {
        case 0, 1, 2: body = r.mutate(body)
        case 3: body = r.bytes(upTo: 300)
        case 4: body = Data()
        default: break
        }
        let unsigned = Batch(
            origin: Origin(node: origin.node, epoch: epoch), firstSeq: first, lastSeq: last, previousID: previous, body: body,
            signature: Data(count: 64))
        var x = Self.raw(unsigned)
        var how = "signed"
        switch r.int(0..<20) {
        case 0: x.signature = r.bytes(64); how = "bad signature"
        case 1: x.signature = r.bytes(r.pick([0, 63, 65])); how = "signature of wrong length"
        case 2: x.previousID = r.bytes(r.pick([0, 31, 33])); x.signature = me.identity.sign(unsigned.header); how = "previous_id of wrong length"
        default: x.signature = me.identity.sign(unsigned.header)
        }
        let label = "[own/\(Boundary.show(epoch)) \(Boundary.show(first))…\(Boundary.show(last)) "
            + "prev=\(previous == Batch.zeroID ? "zero" : String(previous.hexString.prefix(8)) + "…") body=\(body.count)B"
            + "\(base == nil ? ": " + changes.map(HostileChanges.show).joined(separator: ", ") : " real body") \(how)]"
        return (x, label)
    }

    /// Batches the sender cannot upload: another site's (validly signed by it), or signed by us in its name.
    func forgedBatches(_ r: inout FuzzRandom) -> FuzzMessage {
        _ = try? honest.store.sealPending()
        let theirs = ((try? honest.store.ownBatches(after: VersionVector(), maxBytes: 100_000)) ?? [])
        var p = Hocvu_Wire_V1_Batches()
        var label: String
        if !theirs.isEmpty, r.bool() {
            let b = r.pick(theirs)
            p.batches = [Self.raw(b)]
            label = "the honest site's own batch \(describe(b)) (validly signed by it)"
        } else {
            let node = r.chance(0.5) ? honest.identity.publicKey : r.bytes(32)
            guard let id = NodeID(bytes: node) else { return junk(&r) }
            let now = NodeStore.systemNow()
            let changes = [HostileChanges.change(&r, learner: 1, commune: honest.commune, now: now, settings: settings)]
            let first = r.u64(near: 1, avoidAbove63: settings.avoid("seq63"))
            let b = Batch(
                origin: Origin(node: id, epoch: r.u64()), firstSeq: first, lastSeq: first, previousID: Batch.zeroID,
                body: Data(ChangeCodec.encode(changes)), signature: Data(count: 64))
            var x = Self.raw(b)
            x.signature = me.identity.sign(b.header)  // our signature, their name
            p.batches = [x]
            label = "batch in \(names[node] ?? "a stranger")'s name signed by us \(describe(b))"
        }
        return Raw.message(.batches, id: id(&r), Raw.serialize(p), label: "forged " + label)
    }

    func chunkRequest(_ r: inout FuzzRandom) -> FuzzMessage {
        var p = Hocvu_Wire_V1_ChunkRequest()
        let n = r.chance(0.05) ? r.pick([64, 65, 200]) : r.int(0...8)
        p.hashes = (0..<n).map { _ in
            switch r.int(0..<6) {
            case 0, 1, 2: Data(hex: r.pick(chunkNames)) ?? Data()
            case 3, 4: r.bytes(32)
            default: r.bytes(r.pick([0, 1, 31, 33, 64]))
            }
        }
        let label = "{\(n) names: " + p.hashes.prefix(4).map { chunkNames.contains($0.hexString) ? "real" : "bytes(\($0.count))" }.joined(separator: ",") + "}"
        return Raw.message(.chunkRequest, id: id(&r), Raw.serialize(p), label: label)
    }

    /// Messages only a hub (or an admin) sends, sent by a site.
    func wrongWay(_ r: inout FuzzRandom) -> FuzzMessage {
        let origin = (try? me.origin) ?? Origin(node: NodeID(bytes: own)!, epoch: 0)
        switch r.int(0..<8) {
        case 0:
            var p = Hocvu_Wire_V1_Welcome()
            p.clockMs = r.i64()
            p.have = [Raw.originSeq(node: own, epoch: origin.epoch, seq: r.u64())]
            p.credit = r.u32()
            p.releaseVersion = r.u64()
            return Raw.message(.welcome, id: id(&r), Raw.serialize(p), label: "{clock_ms=\(Boundary.show(p.clockMs)) have=\(Raw.show(p.have, names: names)) credit=\(p.credit) release=\(Boundary.show(p.releaseVersion))}")
        case 1:
            var p = Hocvu_Wire_V1_Ack()
            p.ackedMessageID = r.u64()
            p.have = [Raw.originSeq(node: own, epoch: origin.epoch, seq: r.u64())]
            p.credit = r.u32()
            var refused = Hocvu_Wire_V1_Refused()
            refused.reason = String(repeating: "x", count: r.int(0...600))
            refused.firstSeq = r.u64()
            p.refused = [refused]
            return Raw.message(.ack, id: id(&r), Raw.serialize(p), label: "{acked=\(Boundary.show(p.ackedMessageID)) have=\(Raw.show(p.have, names: names)) credit=\(p.credit)}")
        case 2:
            var p = Hocvu_Wire_V1_HomeFeed()
            var body = Hocvu_Wire_V1_HomeFeedBody()
            body.commune = r.u32()
            body.firstSeq = r.u64()
            p.body = Raw.serialize(body)
            p.signature = r.bytes(r.chance(0.8) ? 64 : 10)
            return Raw.message(.homeFeed, id: id(&r), Raw.serialize(p), label: "{commune=\(body.commune) first_seq=\(Boundary.show(body.firstSeq))}")
        case 3:
            var p = Hocvu_Wire_V1_ReleaseOffer()
            p.manifest = r.chance(0.5) ? offer.manifestBytes : r.bytes(upTo: 200)
            p.signatures = offer.signatures.map {
                var s = Hocvu_Wire_V1_ReleaseSignature()
                s.key = Data(hex: $0.key) ?? Data()
                s.signature = Data(hex: $0.signature) ?? Data()
                return s
            }
            return Raw.message(.releaseOffer, id: id(&r), Raw.serialize(p), label: "{manifest=\(p.manifest.count)B, \(p.signatures.count) admin signatures}")
        case 4:
            var p = Hocvu_Wire_V1_Chunk()
            p.hash = r.chance(0.5) ? (Data(hex: r.pick(chunkNames)) ?? Data()) : r.bytes(32)
            p.data = r.bytes(upTo: 2_000)
            return Raw.message(.chunk, id: id(&r), Raw.serialize(p), label: "{\(p.data.count) bytes}")
        case 5:
            var p = Hocvu_Wire_V1_TryLater()
            p.retryAfterS = r.u32()
            return Raw.message(.tryLater, id: id(&r), Raw.serialize(p), label: "{retry_after_s=\(p.retryAfterS)}")
        case 6:
            var p = Hocvu_Wire_V1_Refuse()
            p.code = Hocvu_Wire_V1_Refuse.Code(rawValue: r.int(0...12)) ?? .unspecified
            p.reason = "fuzz"
            p.retryAfterS = r.u32()
            return Raw.message(.refuse, id: id(&r), Raw.serialize(p), label: "{code=\(p.code.rawValue) retry=\(p.retryAfterS)}")
        default:
            var p = Hocvu_Wire_V1_Published()
            p.version = r.u64()
            return Raw.message(.published, id: id(&r), Raw.serialize(p), label: "{version=\(Boundary.show(p.version))}")
        }
    }

    /// Frames no peer should send: wrong counts, bad envelopes, unknown kinds and versions, oversize.
    func junk(_ r: inout FuzzRandom) -> FuzzMessage {
        switch r.int(0..<7) {
        case 0:
            let n = r.pick([1, 3, 4, 5])
            return FuzzMessage(frames: (0..<n).map { _ in r.bytes(upTo: 40) }, label: "JUNK \(n) random frames")
        case 1:
            var w = ProtoWriter()
            w.field(1, varint: r.pick([0, 1, 2, 0xFFFF_FFFF, UInt64.max]))
            w.field(2, varint: r.u64())
            w.field(3, varint: r.pick([0, 12, 99, 0x7FFF_FFFF, UInt64.max, 1 << 32]))
            w.field(4, varint: r.u64())
            return FuzzMessage(frames: [w.data, r.bytes(upTo: 64)], label: "JUNK envelope with raw varints")
        case 2:
            return FuzzMessage(frames: [r.bytes(upTo: 300), r.bytes(upTo: 300)], label: "JUNK random envelope and payload")
        case 3:
            return FuzzMessage(
                frames: [Raw.envelope(.batches, id: r.u64(), major: 1), Data(count: WireLimits.maxPayloadBytes + r.int(1...3_000))],
                label: "JUNK oversized BATCHES payload (over the codec limit, under MAXMSGSIZE)")
        case 4:
            return FuzzMessage(
                frames: [Raw.envelope(.hello, id: 1, major: r.pick([0, 2, UInt32.max])), Data()],
                label: "JUNK HELLO of another major version")
        case 5:
            return FuzzMessage(frames: [Raw.envelope(.UNRECOGNIZED(r.int(12...1_000)), id: 1), r.bytes(upTo: 40)], label: "JUNK unknown kind")
        default:
            return FuzzMessage(frames: [Data(count: r.int(257...400)), Data()], label: "JUNK envelope over 256 bytes")
        }
    }

    /// A valid-looking message with a few bytes of its payload changed.
    func mutated(_ r: inout FuzzRandom) -> FuzzMessage {
        let kind: Raw.Kind = r.bool() ? .hello : .batches
        var m = kind == .hello ? hello(&r, plausible: true) : signedBatches(&r)
        if r.chance(0.8) {
            m.frames[1] = r.mutate(m.frames[1])
            m.label = "MUTATED payload of " + m.label + "; " + Raw.decodedText(kind, m.frames[1])
        } else {
            m.frames[0] = r.mutate(m.frames[0])
            m.label = "MUTATED envelope of " + m.label
        }
        return m
    }
}

/// A real site (commune 70, three results recorded) whose pinned hub is a ``FakeHub``: it trusts
/// `fx`'s admins and takes the home feed signed by `hubIdentity`. `feed` holds real changes about
/// its learners recorded at another commune, for valid feed entries.
struct SiteRig {
    let fake: FakeHub
    let site: Fleet.Site
    let hubIdentity = SigningKeyPair.generate()
    let config: SiteClient.Configuration
    let feed: [(node: Data, change: Data)]

    init(tmp: TemporaryDirectory, fx: ReleaseFixture) throws {
        let hubKeys = BoxKeyPair.generate()
        fake = try FakeHub(keys: hubKeys)
        site = try Fleet.Site(commune: 70, dir: tmp)
        try recordResults(site.store, commune: site.commune, first: 0, count: 3)
        let elsewhere = try Fleet.Site(commune: 73, dir: tmp)
        try recordResults(elsewhere.store, commune: 70, first: 50_000, count: 10)
        try elsewhere.store.sealPending()
        var feed = [(node: Data, change: Data)]()
        for b in try elsewhere.store.batches(after: VersionVector()) {
            for c in try ChangeCodec.decode(b.body) { feed.append((b.origin.node.bytes, Data(ChangeCodec.encode([c])))) }
        }
        self.feed = feed
        var config = SiteClient.Configuration(hubEndpoint: fake.endpoint, hubTransportKey: hubKeys.publicKey, transportKeys: site.transport)
        config.reconnectBase = 50
        config.reconnectMax = 200
        config.hubIdentityKey = hubIdentity.publicKey
        config.trust = fx.trust
        config.chunkDirectory = tmp.file("chunks-70")
        config.fetchTimeoutMilliseconds = 500
        self.config = config
    }
}

// MARK: - The hostile hub's sessions

/// Drives a ``FakeHub``: each round is one connection of the real site, answered with hostile
/// WELCOME, ACK, HOME_FEED, RELEASE_OFFER, CHUNK, TRY_LATER and REFUSE messages.
final class HostileHub {
    enum Outcome { case normal, fatalRefusalSent, noHello }

    let fake: FakeHub
    let site: Fleet.Site
    let identity: SigningKeyPair
    let fixture: ReleaseFixture
    let release: ReleaseBundle
    let baseManifest: Manifest
    let chunks: ChunkStore
    let feed: [(node: Data, change: Data)]
    let settings: FuzzSettings
    let names: [Data: String]
    var sent = 0
    var routing = Data()
    /// What the site sent this session, not yet answered.
    var pendingBatches: [(id: UInt64, batches: [Batch])] = []
    var pendingChunks: [String] = []
    var helloCursor: UInt64 = 0
    var feedSeq: UInt64 = 0
    var recorded = 0
    /// The site under test (replaced when a fatal REFUSE stopped it).
    var client: SiteClient!

    init(
        fake: FakeHub, site: Fleet.Site, identity: SigningKeyPair, fixture: ReleaseFixture, release: ReleaseBundle,
        feed: [(node: Data, change: Data)], settings: FuzzSettings
    ) throws {
        self.fake = fake
        self.site = site
        self.identity = identity
        self.fixture = fixture
        self.release = release
        baseManifest = try Manifest.decode(release.manifestBytes())
        chunks = try release.chunkStore()
        self.feed = feed
        self.settings = settings
        names = [site.identity.publicKey: "site"]
    }

    var origin: Origin { (try? site.origin) ?? Origin(node: NodeID(bytes: site.identity.publicKey)!, epoch: 0) }

    func send(_ m: FuzzMessage) {
        FuzzJournal.note("→ site " + m.journalLine)
        if !fake.send(routing, m.frames) { FuzzJournal.note("   (not delivered: the site's connection is gone)") }
        sent += 1
        listen(milliseconds: 15)
    }

    /// Collects what the site sends (BATCHES, CHUNK_REQUEST, HELLO), journaled.
    func listen(milliseconds: Int) {
        guard let got = try? fake.receive(milliseconds: milliseconds) else { return }
        for (from, frames) in got { heard(from, frames) }
    }

    /// Messages the site sent that a real hub's decoder refuses: the site could never sync with them.
    var refusedByHubCodec: [String] = []

    /// Journals one message from the site; returns true for a HELLO. Every message is also put
    /// through the hub's own decoder: what it refuses, a real hub would drop.
    @discardableResult
    func heard(_ from: Data, _ frames: [Data]) -> Bool {
        routing = from
        let decoded: (id: UInt64, message: WireMessage)
        do { decoded = try WireCodec.decode(frames) } catch {
            let kind = frames.count == 2 ? (try? Hocvu_Wire_V1_Envelope(serializedBytes: frames[0])).map { Raw.kindName($0.kind) } : nil
            let what = "← site \(kind ?? "(\(frames.count) frames)") that the hub's decoder refuses: \(error); "
                + (kind == "HELLO" ? Raw.decodedText(.hello, frames[1]) : "")
            FuzzJournal.note(what)
            refusedByHubCodec.append(what)
            if kind == "HELLO", let h = try? Hocvu_Wire_V1_Hello(serializedBytes: frames[1]) {
                helloCursor = h.homeFeedCursor
                return true
            }
            return false
        }
        let id = decoded.id
        switch decoded.message {
        case .batches(let b):
            pendingBatches.append((id, b))
            FuzzJournal.note("← site id=\(id) BATCHES " + b.map { "\($0.firstSeq)…\($0.lastSeq)" }.joined(separator: " "))
        case .chunkRequest(let names):
            pendingChunks += names
            FuzzJournal.note("← site CHUNK_REQUEST \(names.count) names")
        case .hello(let h):
            helloCursor = h.homeFeedCursor ?? 0
            FuzzJournal.note(
                "← site id=\(id) HELLO epoch=\(h.origin.epoch) release=\(h.releaseVersion) cursor=\(h.homeFeedCursor.map { "\($0)" } ?? "-") knowledge=\(h.knowledge.entries.values.sorted())")
            return true
        default:
            FuzzJournal.note("← site id=\(id) " + String(String(describing: decoded.message).prefix(200)))
        }
        return false
    }

    /// Waits for the site's HELLO on a fresh connection.
    func awaitHello(seconds: Double) throws -> Bool {
        pendingBatches = []
        pendingChunks = []
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            let got = try fake.receive(milliseconds: 20) { frames in
                frames.count == 2 && (try? Hocvu_Wire_V1_Envelope(serializedBytes: frames[0]))?.kind == .hello
            }
            var hello = false
            for (from, frames) in got where heard(from, frames) { hello = true }
            if hello { return true }
        }
        return false
    }

    func session(_ r: inout FuzzRandom, round: Int, client: SiteClient) throws -> Outcome {
        self.client = client
        FuzzJournal.note("-- the fake hub drops the connection and listens again")
        try fake.restart()
        guard try awaitHello(seconds: 5) else { return .noHello }
        var outcome = Outcome.normal
        if r.chance(0.85) { send(welcome(&r, plausible: r.chance(0.4))) }
        for _ in 0..<r.int(2...9) {
            switch r.int(0..<100) {
            case 0..<18: send(ack(&r))
            case 18..<34: send(homeFeed(&r))
            case 34..<46: send(releaseOffer(&r))
            case 46..<58: send(chunkReply(&r))
            case 58..<64:
                let (m, fatal) = refuse(&r)
                send(m)
                if fatal { outcome = .fatalRefusalSent }
            case 64..<70: send(welcome(&r, plausible: r.bool()))
            case 70..<80: send(wrongWay(&r))
            case 80..<88: send(junk(&r))
            default:
                recorded += 1
                do { try recordOnSiteClock(site.store, commune: site.commune, first: 100_000 + recorded) } catch {
                    FuzzJournal.note("   (the site could not record a result: \(error))")
                }
                client.wake()
                FuzzJournal.note("-- the site records a result (wake)")
                listen(milliseconds: 40)
            }
        }
        listen(milliseconds: 30)
        return outcome
    }

    // MARK: messages

    func welcome(_ r: inout FuzzRandom, plausible: Bool) -> FuzzMessage {
        var p = Hocvu_Wire_V1_Welcome()
        let now = NodeStore.systemNow()
        let avoidClock = settings.avoid("clock"), avoid = settings.avoid("seq63")
        if plausible {
            p.clockMs = now + Int64(r.int(-5_000...5_000)) * r.pick([Int64(1), 1_000, 17_280])  // up to ±24 h
            p.have = []
            p.credit = r.pick([1, 4, 8])
            p.releaseVersion = r.pick([0, 1, 2])
        } else {
            p.clockMs = r.i64(near: now)
            if avoidClock, !(now - 86_400_000...now + 86_400_000).contains(p.clockMs) { p.clockMs = now + 86_400_000 }
            p.have = (0..<r.int(0...3)).map { _ in
                Raw.originSeq(
                    node: r.chance(0.8) ? origin.node.bytes : r.bytes(r.pick([32, 31])), epoch: r.chance(0.8) ? origin.epoch : r.u64(),
                    seq: r.u64(near: 1, avoidAbove63: avoid))
            }
            p.credit = r.u32(near: 4)
            p.releaseVersion = r.u64(avoidAbove63: avoid)
        }
        let label = "{clock_ms=\(Boundary.show(p.clockMs)) (now\(p.clockMs >= now ? "+" : "")\(p.clockMs &- now) ms) have=\(Raw.show(p.have, names: names)) "
            + "credit=\(Boundary.show(UInt64(p.credit))) release=\(Boundary.show(p.releaseVersion))}"
        return Raw.message(.welcome, id: r.chance(0.8) ? 1 : r.u64(), Raw.serialize(p), label: label)
    }

    func ack(_ r: inout FuzzRandom) -> FuzzMessage {
        var p = Hocvu_Wire_V1_Ack()
        let pending = pendingBatches.isEmpty ? nil : pendingBatches.removeFirst()
        p.ackedMessageID = pending.map(\.id) ?? r.u64()
        let honestHave = pending?.batches.map(\.lastSeq).max() ?? 0
        if r.chance(0.4) {
            p.have = [Raw.originSeq(node: origin.node.bytes, epoch: origin.epoch, seq: honestHave)]
            p.credit = 4
        } else {
            p.have = (0..<r.int(0...2)).map { _ in
                Raw.originSeq(
                    node: r.chance(0.8) ? origin.node.bytes : r.bytes(32), epoch: r.chance(0.8) ? origin.epoch : r.u64(),
                    seq: r.u64(near: honestHave, avoidAbove63: settings.avoid("seq63")))
            }
            p.credit = r.u32(near: 4)
            p.refused = (0..<r.int(0...2)).map { _ in
                var x = Hocvu_Wire_V1_Refused()
                x.reason = String(repeating: "ý", count: r.int(0...700))
                x.firstSeq = r.u64()
                return x
            }
        }
        return Raw.message(.ack, id: 0, Raw.serialize(p), label: "{acked=\(Boundary.show(p.ackedMessageID)) have=\(Raw.show(p.have, names: names)) credit=\(p.credit) refused=\(p.refused.count)}")
    }

    /// A home feed signed with the pinned hub identity (mostly), with boundary sequence numbers.
    func homeFeed(_ r: inout FuzzRandom) -> FuzzMessage {
        var body = Hocvu_Wire_V1_HomeFeedBody()
        body.commune = r.chance(0.8) ? UInt32(site.commune) : r.u32()
        let n = r.chance(0.05) ? r.pick([2_000, 2_001]) : r.int(0...6)
        switch r.int(0..<4) {
        case 0, 1: body.firstSeq = helloCursor + 1
        default: body.firstSeq = r.u64(near: helloCursor + 1, avoidAbove63: settings.avoid("seq63"))
        }
        body.entries = (0..<n).map { i in
            var e = Hocvu_Wire_V1_HomeFeedEntry()
            let f = feed[(Int(feedSeq) + i) % feed.count]
            e.node = r.chance(0.9) ? f.node : r.bytes(r.pick([31, 32, 0]))
            e.change = r.chance(0.85) ? f.change : r.mutate(f.change)
            return e
        }
        if body.firstSeq == helloCursor + 1 { feedSeq += UInt64(n); helloCursor += UInt64(n) }
        let bytes = Raw.serialize(body)
        var p = Hocvu_Wire_V1_HomeFeed()
        p.body = bytes
        var how = "signed by the pinned hub identity"
        switch r.int(0..<10) {
        case 0: p.signature = r.bytes(64); how = "bad signature"
        case 1: p.body = r.mutate(bytes); p.signature = identity.sign(Data("hocvu home feed v1\n".utf8) + p.body); how = "mutated body, signed"
        default: p.signature = identity.sign(Data("hocvu home feed v1\n".utf8) + bytes)
        }
        return Raw.message(.homeFeed, id: 0, Raw.serialize(p), label: "{commune=\(body.commune) first_seq=\(Boundary.show(body.firstSeq)) entries=\(n) \(how)}")
    }

    /// A release offer: the real one, admin-signed manifests with boundary fields, or garbage.
    func releaseOffer(_ r: inout FuzzRandom) -> FuzzMessage {
        let installed = client.status.installedRelease ?? 1
        let (p, label) = HostileReleases.offer(
            &r, base: baseManifest, baseBytes: (try? release.manifestBytes()) ?? Data(), current: installed,
            admins: fixture.admins.map(\.signing), threshold: fixture.trust.threshold, settings: settings)
        return Raw.message(.releaseOffer, id: 0, Raw.serialize(p), label: label)
    }

    /// Answers a chunk request (real, wrong or random bytes) or says TRY_LATER.
    func chunkReply(_ r: inout FuzzRandom) -> FuzzMessage {
        let name = pendingChunks.isEmpty ? (baseManifest.chunks.isEmpty ? r.bytes(32).hexString : r.pick(baseManifest.chunks).hash) : pendingChunks.removeFirst()
        switch r.int(0..<10) {
        case 0, 1, 2, 3:
            var p = Hocvu_Wire_V1_Chunk()
            p.hash = Data(hex: name) ?? Data()
            p.data = (try? chunks.read(name)) ?? r.bytes(100)
            return Raw.message(.chunk, id: 0, Raw.serialize(p), label: "{\(name.prefix(8))… real bytes (\(p.data.count))}")
        case 4, 5:
            var p = Hocvu_Wire_V1_Chunk()
            p.hash = Data(hex: name) ?? Data()
            p.data = r.bytes(upTo: 3_000)
            return Raw.message(.chunk, id: 0, Raw.serialize(p), label: "{\(name.prefix(8))… wrong bytes (\(p.data.count))}")
        case 6:
            var p = Hocvu_Wire_V1_Chunk()
            p.hash = r.bytes(r.pick([32, 31, 0]))
            p.data = Data(count: r.pick([0, 1, (1 << 20) + 1]))
            return Raw.message(.chunk, id: 0, Raw.serialize(p), label: "{unasked name (\(p.hash.count)B), \(p.data.count) bytes}")
        default:
            var p = Hocvu_Wire_V1_TryLater()
            p.retryAfterS = r.u32()
            p.reason = String(repeating: "z", count: r.int(0...600))
            return Raw.message(.tryLater, id: 0, Raw.serialize(p), label: "{retry_after_s=\(p.retryAfterS)}")
        }
    }

    /// - Returns: the message and whether it must stop the site (a connection-level refusal).
    func refuse(_ r: inout FuzzRandom) -> (FuzzMessage, Bool) {
        var p = Hocvu_Wire_V1_Refuse()
        let fatalAllowed = !settings.avoid("fatal-refuse") && r.chance(0.15)
        // 1–4 (version, not enrolled, revoked, wrong identity) stop the site. 5 malformed, 6 busy, 7 protocol
        // and unknown codes (read as protocol) pause; 8 (release refused) changes nothing.
        let code = fatalAllowed ? r.pick([1, 2, 3, 4]) : r.pick([0, 5, 6, 7, 8, 9, 1_000])
        p.code = Hocvu_Wire_V1_Refuse.Code(rawValue: code) ?? .unspecified
        p.reason = String(repeating: "r", count: r.int(0...800))
        p.retryAfterS = r.u32()
        let fatal = (1...4).contains(code)
        return (Raw.message(.refuse, id: r.u64(), Raw.serialize(p), label: "{code=\(code)\(fatal ? " (fatal)" : "") retry=\(p.retryAfterS)}"), fatal)
    }

    /// Site-to-hub kinds (and PUBLISHED), sent to the site.
    func wrongWay(_ r: inout FuzzRandom) -> FuzzMessage {
        switch r.int(0..<4) {
        case 0:
            var p = Hocvu_Wire_V1_Hello()
            p.node = site.identity.publicKey
            p.wantsHomeFeed = true
            p.homeFeedCursor = r.u64()
            return Raw.message(.hello, id: r.u64(), Raw.serialize(p), label: "{cursor=\(Boundary.show(p.homeFeedCursor))}")
        case 1:
            var p = Hocvu_Wire_V1_Batches()
            var b = Hocvu_Wire_V1_Batch()
            b.node = site.identity.publicKey
            b.firstSeq = r.u64()
            b.lastSeq = r.u64()
            b.previousID = Data(count: 32)
            b.signature = r.bytes(64)
            p.batches = [b]
            return Raw.message(.batches, id: r.u64(), Raw.serialize(p), label: "{\(Boundary.show(b.firstSeq))…\(Boundary.show(b.lastSeq))}")
        case 2:
            var p = Hocvu_Wire_V1_ChunkRequest()
            p.hashes = [r.bytes(32)]
            return Raw.message(.chunkRequest, id: 0, Raw.serialize(p), label: "{1 name}")
        default:
            var p = Hocvu_Wire_V1_Published()
            p.version = r.u64()
            return Raw.message(.published, id: 0, Raw.serialize(p), label: "{version=\(Boundary.show(p.version))}")
        }
    }

    func junk(_ r: inout FuzzRandom) -> FuzzMessage {
        switch r.int(0..<4) {
        case 0:
            let n = r.pick([1, 3])
            return FuzzMessage(frames: (0..<n).map { _ in r.bytes(upTo: 40) }, label: "JUNK \(n) random frames")
        case 1:
            return FuzzMessage(frames: [Raw.envelope(.welcome, id: 1, major: r.pick([0, 2, UInt32.max])), Data()], label: "JUNK WELCOME of another major")
        case 2:
            var w = ProtoWriter()
            w.field(1, varint: 1)
            w.field(3, varint: r.pick([2, 4, 11, UInt64.max]))
            return FuzzMessage(frames: [w.data, r.bytes(upTo: 200)], label: "JUNK random payload")
        default:
            var m = welcome(&r, plausible: true)
            if settings.avoid("clock") { m.frames[1] = r.bytes(upTo: 3); m.label = "JUNK short WELCOME payload"; return m }
            m.frames[1] = r.mutate(m.frames[1])
            m.label = "MUTATED payload of " + m.label + "; " + Raw.decodedText(.welcome, m.frames[1])
            return m
        }
    }

    /// An honest hub at last: WELCOME with nothing held, then ACK every upload, until the hub holds
    /// everything the site has sealed of its own origin.
    func honestSession(client: SiteClient, seconds: Double) throws -> Bool {
        try fake.restart()
        guard try awaitHello(seconds: 5) else { return false }
        var p = Hocvu_Wire_V1_Welcome()
        p.clockMs = NodeStore.systemNow()
        p.credit = 8
        p.releaseVersion = 0
        send(Raw.message(.welcome, id: 1, Raw.serialize(p), label: "{honest, have=[]}"))
        var held = [Origin: UInt64]()
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            listen(milliseconds: 20)
            while !pendingBatches.isEmpty {
                let (id, batches) = pendingBatches.removeFirst()
                for b in batches where b.firstSeq <= held[b.origin, default: 0] + 1 { held[b.origin] = max(held[b.origin, default: 0], b.lastSeq) }
                var a = Hocvu_Wire_V1_Ack()
                a.ackedMessageID = id
                a.have = held.map { Raw.originSeq(node: $0.key.node.bytes, epoch: $0.key.epoch, seq: $0.value) }
                a.credit = 8
                send(Raw.message(.ack, id: 0, Raw.serialize(a), label: "{honest acked=\(id)}"))
            }
            try site.store.sealPending()
            let mine = try site.store.versionVector().restricted(to: site.store.node)
            if !mine.entries.isEmpty, mine.entries.allSatisfy({ held[$0.key, default: 0] >= $0.value }) { return true }
        }
        return false
    }
}
