import Foundation
import Logging
import Merge
import Node
import Release
import Sodium
import Store
import Synchronization
import TestSupport
import Testing
import Transport
import Wire

/// What a node logs, kept for assertions on log volume.
final class LogCapture: Sendable {
    struct Line: Sendable {
        let level: Logger.Level
        let message: String
        let metadata: String
    }

    private let lines = Mutex<[Line]>([])

    var logger: Logger {
        var l = Logger(label: "capture") { [self] _ in Handler(capture: self) }
        l.logLevel = .info
        return l
    }

    func append(_ line: Line) { lines.withLock { $0.append(line) } }

    /// Lines at `level` or above, optionally mentioning `text` (message or metadata).
    func lines(atLeast level: Logger.Level, mentioning text: String? = nil) -> [Line] {
        lines.withLock { all in
            all.filter { line in line.level >= level && (text.map { line.message.contains($0) || line.metadata.contains($0) } ?? true) }
        }
    }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let m = metadata.merging(event.metadata ?? [:]) { $1 }
            capture.append(Line(level: event.level, message: event.message.description, metadata: "\(m)"))
        }
    }
}

/// Retries on the release path back off, bad sources are named once, and a hub never serves a
/// chunk that rotted on its disk (issue 9, item 7). Real hub and sites over tcp://127.0.0.1 with
/// CURVE, as in ReleaseSyncTests.
@Suite(.serialized) struct ReleaseRetryTests {
    /// Replaces the fleet's hub by one that logs to `log` (same database, keys and chunk directory).
    func restartHub(_ fleet: Fleet, trust: TrustPolicy, log: LogCapture) throws {
        fleet.hub.stop()
        var config = HubServer.Configuration(bind: "tcp://127.0.0.1:*", transportKeys: fleet.hubKeys)
        config.identity = fleet.hubIdentity
        config.releases = HubServer.ReleaseSettings(trust: trust, chunkDirectory: fleet.dir.file("hub-chunks"))
        fleet.hub = HubServer(store: fleet.hubStore, configuration: config, logger: log.logger)
        fleet.endpoint = try fleet.hub.start()
    }

    /// A site of `fleet` talking to `endpoint` (the fleet's hub by default), logging to `log`.
    func startSite(
        _ fleet: Fleet, _ s: Fleet.Site, trust: TrustPolicy, log: LogCapture, endpoint: String? = nil
    ) throws -> SiteClient {
        var config = SiteClient.Configuration(
            hubEndpoint: endpoint ?? fleet.endpoint, hubTransportKey: fleet.hubKeys.publicKey, transportKeys: s.transport)
        config.reconnectBase = 100
        config.trust = trust
        config.chunkDirectory = fleet.chunkDirectory(s)
        config.fetchTimeoutMilliseconds = 1_000  // retries back off from ~66 ms up to a 20 s cap
        let client = try SiteClient(store: s.store, configuration: config, logger: log.logger)
        try client.start()
        s.client = client
        return client
    }

    func publisher(_ fleet: Fleet, _ admin: ReleaseFixture.Admin) -> ReleasePublisher {
        var p = ReleasePublisher(
            hubEndpoint: fleet.endpoint, hubTransportKey: fleet.hubKeys.publicKey, transportKeys: admin.transport, logger: quietLogger)
        p.idleTimeoutSeconds = 10
        return p
    }

    /// Publishes on another thread: before backoff a publish could loop forever, and the test
    /// must fail rather than hang. Returns nil if it did not finish within `seconds`.
    func publish(_ p: ReleasePublisher, _ bundle: ReleaseBundle, within seconds: Double = 30) -> Result<ReleasePublisher.Result, any Error>? {
        let box = Mutex<Result<ReleasePublisher.Result, any Error>?>(nil)
        let publisher = UncheckedBox(p)
        let thread = Thread {
            let result = Result { try publisher.value.publish(bundle) }
            box.withLock { $0 = result }
        }
        thread.start()
        _ = eventually(seconds) { box.withLock { $0 != nil } }
        return box.withLock { $0 }
    }

    func corrupt(_ store: ChunkStore, _ hash: String) throws -> Data {
        let good = try store.read(hash)
        var bad = good
        bad[bad.count / 2] ^= 0xFF
        try bad.write(to: URL(fileURLWithPath: "\(store.directory)/\(hash.prefix(2))/\(hash)"))
        return good
    }

    /// The publish path: an admin whose copy of a chunk rotted used to be asked for it again at
    /// once, forever (≈68,000 warnings in 25 s). Now: three tries with a backoff, then a refusal
    /// naming the chunk, logged once.
    @Test func aPublishedChunkThatKeepsFailingVerificationIsRefusedNamingIt() throws {
        let tmp = try TemporaryDirectory(prefix: "hocvu-retry")
        defer { tmp.remove() }
        let fx = try ReleaseFixture(root: tmp.path, mediaBytes: 1 << 20)
        let fleet = try Fleet(communes: [70]) { HubServer.ReleaseSettings(trust: fx.trust, chunkDirectory: $0) }
        defer { fleet.shutdown() }
        let hubLog = LogCapture()
        try restartHub(fleet, trust: fx.trust, log: hubLog)

        let v2 = try fx.build(version: 2)
        let manifest = try Manifest.decode(v2.manifestBytes())
        let victim = manifest.chunks.map(\.hash).sorted()[0]
        let good = try corrupt(try v2.chunkStore(), victim)

        let outcome = try #require(publish(publisher(fleet, fx.admins[0]), v2), "the publish never ended: the hub retried forever")
        guard case .failure(let error) = outcome else { Issue.record("a release with a corrupt chunk was published"); return }
        #expect("\(error)".contains("chunk \(victim) failed verification 3 times from the admin"), "\(error)")
        #expect(try fleet.hubStore.curriculumVersion() == 1)
        let stats = fleet.hub.stats
        #expect(stats.dropped["chunk_failed_verification"] == 3)
        #expect(stats.releasesRefused == 1)
        // Bounded traffic: the offer, each chunk once, the victim three times — then nothing.
        let distinct = Set(manifest.chunks.map(\.hash)).count
        #expect(stats.messagesReceived <= 1 + distinct + 3)
        usleep(2_000_000)
        #expect(fleet.hub.stats.messagesReceived == stats.messagesReceived)
        // Logged once per chunk and class (a first warning, then the refusal), not per retry.
        #expect(hubLog.lines(atLeast: .warning, mentioning: victim).count == 2)
        #expect(hubLog.lines(atLeast: .warning).count <= 3)

        // The refusal is not sticky: with good bytes the same release goes through.
        try v2.chunkStore().write(victim, good)
        let again = try #require(publish(publisher(fleet, fx.admins[0]), v2))
        #expect((try? again.get())?.version == 2)
        #expect(try fleet.hubStore.curriculumVersion() == 2)
    }

    /// A site served a corrupted chunk over and over (by a hub that cannot tell; the real hub now
    /// checks what it serves, so a stand-in hub plays it here) asks for it with a growing backoff,
    /// logs it twice at most, says so in its status, and installs once good bytes are announced.
    @Test func aSiteServedACorruptChunkRepeatedlyBacksOffAndSaysSo() throws {
        let tmp = try TemporaryDirectory(prefix: "hocvu-retry")
        defer { tmp.remove() }
        let fx = try ReleaseFixture(root: tmp.path, mediaBytes: 1 << 20)
        let fleet = try Fleet(communes: [70])
        defer { fleet.shutdown() }
        let v2 = try fx.build(version: 2)
        let release = try v2.signed()
        let manifest = try Manifest.decode(release.manifestBytes)
        let source = try v2.chunkStore()
        let victim = manifest.chunks.map(\.hash).sorted()[0]

        let hub = try StandInHub(keys: fleet.hubKeys, release: release, chunks: source, corrupt: victim)
        defer { hub.stop() }
        let site = fleet.sites[0]
        let siteLog = LogCapture()
        let client = try startSite(fleet, site, trust: fx.trust, log: siteLog, endpoint: hub.endpoint)
        let others = Set(manifest.chunks.map(\.hash)).subtracting([victim])
        #expect(eventually(15) { ChunkStore.held(in: fleet.chunkDirectory(site)) == others })
        #expect(eventually(5) { hub.requests(for: victim).count >= 1 })

        // Over a window of 8 s from the first request: with a 1 s fetch timeout the delays are
        // ~33–66 ms, doubling to the 20 s cap, so about 8 requests (before: one per round trip).
        let first = hub.requests(for: victim)[0]
        usleep(UInt32(max(0, 8_000 - (NodeStore.systemNow() - first))) * 1_000)
        let inWindow = hub.requests(for: victim).filter { $0 - first <= 8_000 }.count
        #expect(inWindow >= 3 && inWindow <= 10, "the corrupt chunk was asked for \(inWindow) times in 8 s")
        #expect(others.reduce(0) { $0 + hub.requests(for: $1).count } <= others.count + 2)  // good chunks: once each
        // Bounded log: the first failure and the bad-source line, never one per retry.
        #expect(siteLog.lines(atLeast: .warning, mentioning: victim).count == 2)
        #expect(siteLog.lines(atLeast: .warning).count <= 3)
        let refusal = try #require(client.status.releaseRefusal)
        #expect(refusal.hasPrefix("chunk \(victim) failed verification ") && refusal.hasSuffix(" times from the hub"), "\(refusal)")
        #expect(try site.store.curriculumVersion() == 1)
        #expect(!ChunkStore.held(in: fleet.chunkDirectory(site)).contains(victim))

        // The hub gets good bytes and announces the release again: the site asks at once and installs.
        hub.serveGoodBytes()
        #expect(eventually(10) { (try? site.store.curriculumVersion()) == 2 })
        #expect(eventually { client.status.releaseRefusal == nil })
    }

    /// A chunk that rotted on the hub's disk after publishing: the hub checks each chunk before
    /// sending it, quarantines the rotted file, reports it once, and never sends it; the site does
    /// not install a half-good release and its requests stay bounded; the admin re-publishing the
    /// same release repairs it and the site installs.
    @Test func aChunkRottedOnTheHubIsQuarantinedNotServedAndARepublishRepairsIt() throws {
        let tmp = try TemporaryDirectory(prefix: "hocvu-retry")
        defer { tmp.remove() }
        let fx = try ReleaseFixture(root: tmp.path, mediaBytes: 1 << 20)
        let fleet = try Fleet(communes: [70]) { HubServer.ReleaseSettings(trust: fx.trust, chunkDirectory: $0) }
        defer { fleet.shutdown() }
        let hubLog = LogCapture()
        try restartHub(fleet, trust: fx.trust, log: hubLog)
        let v2 = try fx.build(version: 2)
        let manifest = try Manifest.decode(v2.manifestBytes())
        #expect(try publish(publisher(fleet, fx.admins[0]), v2)?.get().version == 2)

        let hubChunks = try ChunkStore(directory: fleet.dir.file("hub-chunks"))
        let victim = manifest.chunks.map(\.hash).sorted()[0]
        _ = try corrupt(hubChunks, victim)
        let site = fleet.sites[0]
        let siteLog = LogCapture()
        let client = try startSite(fleet, site, trust: fx.trust, log: siteLog)
        let others = Set(manifest.chunks.map(\.hash)).subtracting([victim])
        #expect(eventually(15) { ChunkStore.held(in: fleet.chunkDirectory(site)) == others })

        // Detected, moved aside (not deleted), reported once; never sent.
        #expect(eventually { fleet.hub.stats.alerts.contains { $0.contains(victim) } })
        #expect(!hubChunks.has(victim))
        let quarantined = try FileManager.default.contentsOfDirectory(atPath: hubChunks.quarantineDirectory)
        #expect(quarantined.count == 1 && quarantined[0].hasPrefix(victim + "."))
        #expect(fleet.hub.stats.chunksServed == others.count)

        // The site keeps asking, with a backoff: the hub sees a bounded number of requests in 6 s.
        let before = fleet.hub.stats.messagesReceived
        usleep(6_000_000)
        let seen = fleet.hub.stats.messagesReceived - before
        #expect(seen <= 8, "the hub saw \(seen) messages in 6 s")
        #expect(try site.store.curriculumVersion() == 1)
        #expect(fleet.hub.stats.alerts.filter { $0.contains(victim) }.count == 1)
        #expect(hubLog.lines(atLeast: .warning, mentioning: victim).count == 1)
        #expect(siteLog.lines(atLeast: .warning, mentioning: victim).isEmpty)  // it never got bad bytes
        #expect(client.status.releaseRefusal == nil)

        // The admin re-publishes the same release: the hub re-fetches what it lost and announces it again.
        let repaired = try #require(publish(publisher(fleet, fx.admins[1]), v2))
        #expect((try? repaired.get())?.version == 2, "\(repaired)")
        #expect(hubChunks.has(victim))
        #expect(eventually(10) { (try? site.store.curriculumVersion()) == 2 })
        #expect(ChunkStore.held(in: fleet.chunkDirectory(site)) == Set(manifest.chunks.map(\.hash)))
    }
}

/// A minimal hub for the site under test: it welcomes the site, offers one release and answers
/// every chunk request at once — with bad bytes for one chunk until told otherwise — and records
/// when each chunk was asked for.
final class StandInHub: Sendable {
    let endpoint: String
    private let stopping = Atomic<Bool>(false)
    private let corrupting = Atomic<Bool>(true)
    private let reoffer = Atomic<Bool>(false)
    private let log = Mutex<[(hash: String, at: Int64)]>([])
    private let done = Atomic<Bool>(false)

    init(keys: BoxKeyPair, release: SignedRelease, chunks: ChunkStore, corrupt victim: String) throws {
        let context = try ZMQContext()
        let zap = try ZAPHandler(context, domain: "hocvu")
        let router = try ZMQSocket(context, .router)
        try router.makeCurveServer(secretKey: keys.secretKey, zapDomain: "hocvu")
        try router.setMaxFrameSize(Int64(WireLimits.maxPayloadBytes + 4_096))
        endpoint = try router.bind("tcp://127.0.0.1:*")
        let manifest = try Manifest.decode(release.manifestBytes)
        let box = UncheckedBox((context, zap, router))
        let thread = Thread { [self] in
            let (_, zap, router) = box.value
            var peers = Set<Data>()
            while !stopping.load(ordering: .relaxed) {
                guard let readable = try? zmqPoll([router, zap.socket], timeoutMilliseconds: 20) else { break }
                if readable.sockets[1] { _ = try? zap.handlePending { _ in .allow(userID: "site") } }
                if reoffer.exchange(false, ordering: .relaxed) {
                    for p in peers { _ = try? router.send([p] + WireCodec.encode(.releaseOffer(release), id: 0)) }
                }
                guard readable.sockets[0] else { continue }
                while let m = try? router.receive(maxFrames: 4) {
                    let peer = m.frames[0]
                    guard let (id, message) = try? WireCodec.decode(Array(m.frames.dropFirst())) else { continue }
                    switch message {
                    case .hello:
                        peers.insert(peer)
                        let welcome = WireMessage.Welcome(
                            clockMilliseconds: NodeStore.systemNow(), have: VersionVector(), credit: 4, releaseVersion: manifest.version)
                        _ = try? router.send([peer] + WireCodec.encode(.welcome(welcome), id: id))
                        _ = try? router.send([peer] + WireCodec.encode(.releaseOffer(release), id: 0))
                    case .chunkRequest(let hashes):
                        for h in hashes {
                            log.withLock { $0.append((h, NodeStore.systemNow())) }
                            guard var data = try? chunks.read(h) else { continue }
                            if h == victim && corrupting.load(ordering: .relaxed) { data[data.count / 2] ^= 0xFF }
                            _ = try? router.send([peer] + WireCodec.encode(.chunk(hash: h, data: data), id: 0))
                        }
                    default:
                        continue
                    }
                }
            }
            router.close()
            zap.socket.close()
            done.store(true, ordering: .relaxed)
        }
        thread.start()
    }

    /// When chunk `hash` was asked for (milliseconds).
    func requests(for hash: String) -> [Int64] { log.withLock { $0.filter { $0.hash == hash }.map(\.at) } }
    func totalRequests() -> Int { log.withLock { $0.count } }

    /// Good bytes from now on, and the release announced again.
    func serveGoodBytes() {
        corrupting.store(false, ordering: .relaxed)
        reoffer.store(true, ordering: .relaxed)
    }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        _ = eventually(5) { done.load(ordering: .relaxed) }
    }
}

/// Hands non-Sendable sockets to the one thread that uses them.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
