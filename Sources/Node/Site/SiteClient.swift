public import Foundation
public import Logging
import Model
public import Sodium
public import Store
public import Merge
public import Release
import Synchronization
import Transport
import Wire

/// The site's sync engine: one CURVE DEALER to the hub (whose key is pinned), driven by a
/// ``SiteSession``. Local writes are sealed and uploaded at once while connected; after any
/// interruption the session resumes from what the hub acknowledged.
public final class SiteClient: Sendable {
    public struct Configuration: Sendable {
        public var hubEndpoint: String
        /// Every hub process to use, in order of preference (docs/multi-hub.md); empty: only
        /// ``hubEndpoint``. They share one transport key and one identity key.
        public var hubEndpoints: [String] = []
        /// A hub that has not served (WELCOME, acknowledgements) for this long, plus a jitter of up
        /// to as much again, is left for the next endpoint.
        public var failoverAfterMilliseconds: Int64 = 15_000
        public var hubTransportKey: Data
        public var transportKeys: BoxKeyPair
        /// First reconnect delay; each site adds its own random jitter of up to twice this, and
        /// libzmq doubles it up to `reconnectMax` (3,321 sites must not reconnect in one second).
        public var reconnectBase: Int32 = 1_000
        public var reconnectMax: Int32 = 300_000
        /// Bytes of batches per message: with the hub's credit this bounds what is in flight.
        public var maxPayloadBytes = 256 * 1_024
        /// Curriculum releases: the pinned trust file and where chunks live. Without it the site
        /// ignores release offers.
        public var trust: TrustPolicy?
        public var chunkDirectory: String?
        /// Chunk requests outstanding at once (credit towards the hub).
        public var fetchWindow = 8
        /// Cap on release download speed, for offices whose one link also carries other work.
        public var fetchBytesPerSecond: Int?
        /// Take the next release as deltas against the installed one (protocol minor 4,
        /// docs/releases.md "Deltas"); off: whole offers and chunks, as before.
        public var releaseDeltas = true
        /// A chunk asked for and not received within this is asked for again.
        public var fetchTimeoutMilliseconds: Int64 = 30_000
        /// An idle connection is confirmed this often (an empty BATCHES the hub acknowledges).
        public var keepaliveMilliseconds: Int64 = 30_000
        /// Seconds sync pauses after a write to this site's database failed on a full disk.
        public var diskFullPauseSeconds: UInt32 = 30
        /// The hub's identity public key, pinned: it signs the home feed (records of this site's
        /// learners recorded at other communes). Without it the site does not take the feed.
        public var hubIdentityKey: Data?
        /// Event counters (uploads, chunks fetched, messages dropped), incremented where each happens.
        public var metrics = SiteMetrics()
        public init(hubEndpoint: String, hubTransportKey: Data, transportKeys: BoxKeyPair) {
            self.hubEndpoint = hubEndpoint
            self.hubTransportKey = hubTransportKey
            self.transportKeys = transportKeys
        }
    }

    /// What the site knows about its sync, from facts (acknowledgements, clocks), for `status`.
    public struct Status: Sendable, Equatable {
        public var connected = false
        public var lastHeardFromHub: Int64?
        public var unacknowledgedMessages = 0
        public var hubHas = VersionVector()
        public var clockOffsetMilliseconds: Int64?
        public var refused: String?
        public var uploadsSent = 0
        public var installedRelease: UInt64?
        public var fetchingRelease: UInt64?
        public var chunksRemaining = 0
        public var chunksFetched = 0
        public var chunkBytesFetched = 0
        public var releaseRefusal: String?
        public var homeFeedCursor: UInt64?
        public var homeFeedMerged = 0
        /// Failed connection attempts (refused, unreachable, unknown host) since start.
        public var connectFailures = 0
        /// True once this run found the database behind the hub's history and re-issued it.
        public var restoreDetected = false
        /// Messages from the hub dropped, per reason (wrong_frame_count, malformed, out_of_range, …).
        public var droppedFromHub: [String: Int] = [:]
        /// Set while the hub's clock is too far from ours to adopt (over 24 h).
        public var clockDisagreement: String?
        /// Set when a write to this site's database failed for want of space (path, free bytes);
        /// cleared by the next round that writes nothing in vain.
        public var diskFull: String?
        /// Why the last release chunk could not be stored (e.g. disk full); cleared by the next stored.
        public var chunkStoreError: String?
        /// With several hubs: the one in use (nil: the first), and how often the site moved on.
        public var hubEndpoint: String?
        public var hubSwitches = 0
    }

    public let store: NodeStore
    let configuration: Configuration
    let logger: Logger
    let wakePipe: WakePipe
    let stopping = Atomic<Bool>(false)
    let heartbeat = LoopHeartbeat()
    let newTrust = Mutex<TrustPolicy?>(nil)

    /// A new trust file (SIGHUP): the next offer, and a release being fetched, are judged by it.
    public func reload(trust: TrustPolicy) {
        newTrust.withLock { $0 = trust }
        wakePipe.wake()
    }

    /// True while the loop goes round; false once it stopped (asked to, or by an error).
    public var isAlive: Bool { !hasFinished && heartbeat.isFresh }
    public var hasFinished: Bool { state.withLock { $0.finished } }
    let completion = EngineCompletion()

    /// Returns once the loop has stopped, asked to (``stop(timeout:)``) or by an error.
    public func finished() async { await completion.wait() }
    let state = Mutex<(status: Status, finished: Bool)>((Status(), false))

    /// The hub endpoint whose home-feed numbering applies (sites with several hubs); loop thread only.
    nonisolated(unsafe) private var homeFeedSource: (endpoint: String, isPrimary: Bool)?

    public init(store: NodeStore, configuration: Configuration, logger: Logger) throws {
        self.store = store
        self.configuration = configuration
        self.logger = logger
        self.wakePipe = try WakePipe()
    }

    public var status: Status { state.withLock { $0.status } }

    /// New local data: seal and upload now rather than at the next timer.
    public func wake() { wakePipe.wake() }

    public func start() throws {
        let thread = Thread { [self] in
            // Named from inside: set before start, Linux keeps the creating thread's name (`top -H`, perf).
            Thread.current.name = "hocvu-site"
            do {
                try self.run()
            } catch {
                logger.critical("Site sync loop stopped", metadata: ["error": "\(error)"])
            }
            state.withLock { $0.finished = true }
            completion.finish()
        }
        thread.start()
    }

    public func stop(timeout: Double = 5) {
        stopping.store(true, ordering: .relaxed)
        wakePipe.wake()
        let end = Date().addingTimeInterval(timeout)
        while !state.withLock({ $0.finished }) && Date() < end { usleep(10_000) }
    }

    private func run() throws {
        let context = try ZMQContext()
        let dealer = try ZMQSocket(context, .dealer)
        try dealer.makeCurveClient(
            publicKey: configuration.transportKeys.publicKey, secretKey: configuration.transportKeys.secretKey,
            serverKey: configuration.hubTransportKey)
        let initial = ReconnectTiming.initialDelay(base: configuration.reconnectBase) { Int32.random(in: $0) }
        try dealer.setReconnect(initial: initial, max: configuration.reconnectMax)
        try dealer.setHeartbeat(interval: 10_000, timeout: 30_000)
        try dealer.setImmediate()
        try dealer.setMaxFrameSize(Int64(WireLimits.maxPayloadBytes + 4_096))
        let monitor = try dealer.monitor(context)
        let endpoints = configuration.hubEndpoints.isEmpty ? [configuration.hubEndpoint] : configuration.hubEndpoints
        var failover = HubFailover(
            endpoints: endpoints, afterMilliseconds: configuration.failoverAfterMilliseconds, now: store.systemTime()
        ) { Int64.random(in: $0) }
        try dealer.connect(failover.endpoint)
        /// Each hub numbers home feeds its own way: the cursor for the hub in use.
        func homeFeedCursor() throws -> UInt64 {
            endpoints.count > 1
                ? try store.homeFeedCursor(source: failover.endpoint, isPrimary: failover.isPrimary) : try store.homeFeedCursor()
        }
        homeFeedSource = endpoints.count > 1 ? (failover.endpoint, failover.isPrimary) : nil

        var session = SiteSession(origin: try store.currentOrigin())
        session.keepaliveInterval = configuration.keepaliveMilliseconds
        if configuration.hubIdentityKey != nil { session.homeFeedCursor = try homeFeedCursor() }
        var releases = try openReleases(trust: configuration.trust)
        session.installedManifestHash = try deltaBase(releases)
        var lastTick: Int64 = 0
        var clock = ClockAdoption()
        var dropLog = LogRateLimiter()
        for repair in store.clockRepairs { logger.warning("Clock repaired on open", metadata: ["repair": "\(repair)"]) }
        while !stopping.load(ordering: .relaxed) {
            heartbeat.beat()
            do {
                if let trust = newTrust.withLock({ t in defer { t = nil }; return t }) {
                    releases = try openReleases(trust: trust)
                    logger.notice("Trust file reloaded", metadata: ["threshold": "\(trust.threshold)", "admins": "\(trust.admins.count)"])
                }
                let fetching = releases?.download.current != nil
                let readable = try zmqPoll([dealer, monitor], fds: [wakePipe.readFD], timeoutMilliseconds: fetching ? 100 : 1_000)
                let now = store.systemTime()  // the clock the hub's offset is measured against
                var actions = [SiteSession.Action]()
                if let next = failover.next(now: now, jitter: { Int64.random(in: $0) }) {
                    // The hub in use has not served for a while: the next one. It answers from the
                    // shared log, so the site resends only what no hub acknowledged.
                    let previous = endpoints[(failover.current + endpoints.count - 1) % endpoints.count]
                    try? dealer.disconnect(previous)
                    try dealer.connect(next)
                    logger.notice("Moving to the next hub", metadata: ["hub.from": "\(previous)", "hub.endpoint": "\(next)"])
                    setConnected(false)
                    session.disconnected()
                    releases?.download.connectionLost()
                    homeFeedSource = (failover.endpoint, failover.isPrimary)
                    if configuration.hubIdentityKey != nil { session.homeFeedCursor = try homeFeedCursor() }
                    state.withLock { $0.status.hubEndpoint = next; $0.status.hubSwitches += 1 }
                }
                if readable.fds[0] { wakePipe.drain() }
                if readable.sockets[1] {
                    for event in try monitor.receiveEvents() {
                        switch event {
                        case .handshakeSucceeded:
                            logger.info("Connected to the hub (secure handshake done); saying HELLO", metadata: ["hub.endpoint": "\(failover.endpoint)"])
                            setConnected(true)
                            actions += session.connected(
                                now: now, knowledge: try store.versionVector(), releaseVersion: try store.curriculumVersion() ?? 0)
                        case .disconnected:
                            if session.state == .ready {
                                logger.notice("Disconnected from the hub; reconnecting with backoff")
                            } else {
                                logger.debug("Connection to the hub closed before WELCOME; reconnecting with backoff")
                            }
                            setConnected(false)
                            session.disconnected()
                            releases?.download.connectionLost()
                            failover.troubled(now: now) { Int64.random(in: $0) }
                        case .handshakeFailed:
                            failover.troubled(now: now) { Int64.random(in: $0) }
                            if let suppressed = dropLog.admit(RefusalKey(commune: nil, reason: "handshake_failed"), now: now) {
                                logger.warning(
                                    "Hub refused the secure handshake: is this site enrolled, and is the hub key right?",
                                    metadata: ["hub.endpoint": "\(failover.endpoint)", "suppressed": "\(suppressed)"])
                            }
                        case .connectRetried(let retry):
                            // Refused, unreachable or an unknown host: say so, at a bounded rate.
                            state.withLock { $0.status.connectFailures += 1 }
                            failover.troubled(now: now) { Int64.random(in: $0) }
                            if let suppressed = dropLog.admit(RefusalKey(commune: nil, reason: "connect_failed"), now: now) {
                                logger.warning(
                                    "Cannot reach the hub (connection refused, network down or unknown host); retrying",
                                    metadata: [
                                        "hub.endpoint": "\(failover.endpoint)", "retry_ms": "\(retry)",
                                        "suppressed": "\(suppressed)",
                                    ])
                            }
                        case .other:
                            break
                        }
                    }
                }
                if readable.sockets[0] {
                    while let m = try dealer.receive(maxFrames: 3) {
                        do {
                            let (_, message) = try WireCodec.decode(m.frames)
                            switch message {
                            case .refuse(let code, let reason, _):
                                logger.error("Hub refused this site", metadata: ["code": "\(code)", "reason": "\(reason)"])
                                // BUSY (its disk or its database): another hub may serve meanwhile.
                                if code == .busy { failover.troubled(now: now) { Int64.random(in: $0) } }
                            case .welcome(let w):
                                failover.served()
                                logger.debug("WELCOME", metadata: ["hub_has": "\(w.have)", "credit": "\(w.credit)", "hub_release": "\(w.releaseVersion)"])
                            case .ack(let a):
                                failover.served()
                                logger.debug(
                                    "ACK", metadata: ["message_id": "\(a.ackedMessageID)", "hub_has": "\(a.have)", "refused": "\(a.refused.count)"])
                            default:
                                break
                            }
                            if case .welcome(let w) = message, try restoredFromBackup(w, session: session) {
                                // Everything was re-issued under a new epoch: start over with it.
                                let cursor = session.homeFeedCursor
                                session = SiteSession(origin: try store.currentOrigin())
                                session.keepaliveInterval = configuration.keepaliveMilliseconds
                                session.homeFeedCursor = cursor
                                session.installedManifestHash = try deltaBase(releases)
                                actions += session.connected(
                                    now: now, knowledge: try store.versionVector(), releaseVersion: try store.curriculumVersion() ?? 0)
                                continue
                            }
                            actions += session.received(message, now: now)
                            if releases != nil {
                                try handleRelease(message, &releases!, now: now)
                                if releases!.deltasRefused, session.installedManifestHash != nil {
                                    // A delta offer could not be rebuilt here: say HELLO again without
                                    // the manifest hash, and the hub sends the whole manifest.
                                    session.installedManifestHash = nil
                                    session.pause(now: now, seconds: 1)
                                }
                            }
                            if case .homeFeed(let body, let signature) = message { try applyHomeFeed(body, signature, &session) }
                        } catch {
                            // Counted exactly; logged at a bounded rate (a broken hub may send this forever).
                            let reason = (error as? WireError)?.statsKey ?? "malformed"
                            state.withLock { $0.status.droppedFromHub[reason, default: 0] += 1 }
                            configuration.metrics.dropped(reason)
                            if let suppressed = dropLog.admit(RefusalKey(commune: nil, reason: reason), now: now) {
                                logger.warning(
                                    "Dropped malformed message from hub",
                                    metadata: ["reason": "\(error)", "suppressed": "\(suppressed)"])
                            }
                        }
                    }
                }
                // Seal what learners recorded, on wake-up or at least once a second.
                if readable.fds[0] || now - lastTick >= 1_000 {
                    lastTick = now
                    // 256 changes per batch stay far below a frame, whatever their text fields hold.
                    try store.sealPending(maxChanges: 256)
                    // Decide from facts, not from who sealed: anything of ours beyond what was sent goes.
                    let knowledge = try store.versionVector()
                    if !session.sentUpTo.dominates(knowledge.restricted(to: store.node)) {
                        actions += session.localChangesAvailable()
                    }
                    actions += session.tick(now: now, knowledge: knowledge, releaseVersion: try store.curriculumVersion() ?? 0)
                }
                while !actions.isEmpty {
                    let action = actions.removeFirst()
                    switch action {
                    case .send(let message, let id):
                        _ = try dealer.send(WireCodec.encode(message, id: id))
                    case .upload(let after, let messages):
                        try upload(after: after, messages: messages, session: &session, dealer: dealer, now: now)
                    case .stop(let reason):
                        state.withLock { $0.status.refused = reason }
                        logger.critical("Stopping sync: the hub refused this site", metadata: ["reason": "\(reason)"])
                        return
                    }
                }
                // A wrong PC clock: run on the hub's time (and say so), so results are stamped right.
                switch clock.measured(session.clockOffset, systemNow: now, inUse: store.clockOffset) {
                case .disagree(let disagreement)?:
                    // A hub (or its host) that far off is not believed: keep our time, say so.
                    state.withLock { $0.status.clockDisagreement = disagreement }
                    logger.error("Clock disagreement with the hub", metadata: ["clock_offset_ms": "\(session.clockOffset ?? 0)"])
                case .adopt(let offset)?:
                    state.withLock { $0.status.clockDisagreement = nil }
                    try store.adoptClockOffset(offset)
                    logger.notice(
                        "This computer's clock differs from the hub's; using the hub's time", metadata: ["clock_offset_ms": "\(offset)"])
                case .agree?:
                    state.withLock { $0.status.clockDisagreement = nil }
                case nil:
                    break
                }
                if releases != nil, session.state == .ready {
                    let installedBefore = releases!.download.installedVersion
                    try fetchAndInstall(&releases!, dealer: dealer, now: now)
                    if releases!.download.installedVersion != installedBefore {
                        // HELLO again on the same connection, naming the release now installed, so the
                        // hub can send the next one as deltas (WELCOME resumes uploads as after a reconnect).
                        session.installedManifestHash = try deltaBase(releases)
                        for case .send(let message, let id) in session.connected(
                            now: now, knowledge: try store.versionVector(), releaseVersion: try store.curriculumVersion() ?? 0)
                        {
                            _ = try dealer.send(WireCodec.encode(message, id: id))
                        }
                    }
                }
                let s = session
                let r = releases
                state.withLock {
                    $0.status.installedRelease = r?.download.installedVersion
                    $0.status.fetchingRelease = r?.download.fetchingVersion
                    $0.status.chunksRemaining = r?.download.current?.fetch.remaining ?? 0
                    $0.status.releaseRefusal = r?.download.lastRefusal?.description
                    $0.status.lastHeardFromHub = s.lastHeard
                    $0.status.unacknowledgedMessages = s.unacknowledgedMessages
                    $0.status.hubHas = s.hubHas
                    $0.status.clockOffsetMilliseconds = s.clockOffset
                    if s.state == .ready { $0.status.diskFull = nil }  // talking again after the pause
                }
            } catch let error where NodeStore.isDiskFull(error) {
                // Whatever failed rolled back (a home-feed slice, a staged release, a clock offset):
                // nothing was acknowledged for it. Pause, then start over with HELLO; the hub resends.
                let description = store.diskFullDescription()
                state.withLock { $0.status.diskFull = description }
                session.pause(now: store.systemTime(), seconds: configuration.diskFullPauseSeconds)
                releases?.download.connectionLost()
                if let suppressed = dropLog.admit(RefusalKey(commune: nil, reason: "disk_full"), now: store.systemTime()) {
                    logger.error(
                        "\(description): sync paused \(configuration.diskFullPauseSeconds) s; free some space, nothing is lost",
                        metadata: ["suppressed": "\(suppressed)"])
                }
            }
        }
    }

    /// Compares this database's history with the hub's (the id of the hub's batch ending where it
    /// says it holds us). A restored backup differs: everything is re-issued under a new epoch, so
    /// nothing is lost, nothing reuses a sequence number the hub holds, and no alarm is raised.
    private func restoredFromBackup(_ w: WireMessage.Welcome, session: SiteSession) throws -> Bool {
        let origin = session.origin
        guard let id = w.haveBatchIDs[origin], w.have[origin] > 0,
              try store.divergesFromHub(origin: origin, seq: w.have[origin], batchID: id)
        else { return false }
        let n = try store.reissueUnderNewEpoch(
            reason: "the hub holds seq \(w.have[origin]) of this origin with a history this database does not have (restored from a backup)")
        state.withLock { $0.status.restoreDetected = true }
        logger.warning(
            "This database is behind the hub's copy of its history (restored from a backup?): re-issued its changes under a new epoch",
            metadata: ["changes": "\(n)", "hub.has_seq": "\(w.have[origin])"])
        return true
    }

    /// Records of this site's learners from other communes: verified against the pinned hub
    /// identity, merged, cursor moved (all in one transaction).
    private func applyHomeFeed(_ body: Data, _ signature: Data, _ session: inout SiteSession) throws {
        guard let hubIdentity = configuration.hubIdentityKey else { return }
        let feed: (commune: Int, entries: [HomeFeedEntry])
        do { feed = try HomeFeedCodec.open(body: body, signature: signature, hubIdentity: hubIdentity) } catch {
            logger.error("Dropped a home feed message", metadata: ["reason": "\(error)"])
            return
        }
        let report = try store.applyHomeFeed(
            feed.entries, commune: feed.commune, hub: NodeID(bytes: hubIdentity), source: homeFeedSource)
        if let other = report.otherCommune {
            logger.error(
                "Refused a home feed for another commune than this site's",
                metadata: ["feed.commune": "\(other)", "hint": "check that this database belongs to this commune's PC"])
            return
        }
        session.homeFeedCursor = report.cursor
        state.withLock {
            $0.status.homeFeedCursor = report.cursor
            $0.status.homeFeedMerged += report.merged
        }
        if report.quarantined > 0 {
            logger.warning("Home feed records set aside", metadata: ["count": "\(report.quarantined)"])
        }
    }

    /// A site's release machinery: the pure download state and the chunk files.
    struct SiteReleases {
        var download: ReleaseDownload
        let chunks: ChunkStore
        /// The optional download speed cap.
        var rate: FetchRateCap
        /// One log line per chunk and failure class (not per retry); the rest is counted.
        var logged = LogOnce()
        /// Chunks whose delta could not be applied here: asked for again whole.
        var wantWhole: [String] = []
        /// A delta offer could not be rebuilt here: take whole offers until the next install.
        var deltasRefused = false
    }

    /// The installed manifest's BLAKE2b-256, named in HELLO so the hub may send deltas against it
    /// (nil: releases off, nothing installed, or a delta offer failed here).
    private func deltaBase(_ r: SiteReleases?) throws -> Data? {
        guard configuration.releaseDeltas, let r, !r.deltasRefused, let installed = try store.installedRelease() else { return nil }
        return Blake2b.hash(installed.manifest)
    }

    private func openReleases(trust: TrustPolicy?) throws -> SiteReleases? {
        guard let trust, let dir = configuration.chunkDirectory else { return nil }
        var r = SiteReleases(
            download: ReleaseDownload(trust: trust, installedVersion: try store.curriculumVersion() ?? 0, window: configuration.fetchWindow),
            chunks: try ChunkStore(directory: dir), rate: FetchRateCap(bytesPerSecond: configuration.fetchBytesPerSecond))
        // A release staged before a restart resumes at once, from the chunks already on disk.
        if let staged = try store.stagedRelease(),
           let sigs = try? JSONDecoder().decode([ReleaseSignature].self, from: staged.signatures)
        {
            try accept(SignedRelease(manifestBytes: staged.manifest, signatures: sigs), &r, now: NodeStore.systemNow())
        }
        return r
    }

    private func handleRelease(_ message: WireMessage, _ r: inout SiteReleases, now: Int64) throws {
        switch message {
        case .releaseOffer(let release):
            try accept(release, &r, now: now)
        case .releaseOfferDelta(let base, let delta, let signatures):
            // Rebuilt from the installed manifest, then judged exactly like a whole offer.
            guard let installed = try store.installedRelease(), Blake2b.hash(installed.manifest) == base,
                  let bytes = try? ByteDelta.apply(delta, bases: [installed.manifest], maxSize: ReleaseDelta.maxManifestBytes)
            else {
                r.deltasRefused = true
                logger.warning("Could not rebuild a release offered as a delta; asking the hub for the whole manifest")
                return
            }
            try accept(SignedRelease(manifestBytes: bytes, signatures: signatures), &r, now: now)
        case .chunk(let hash, let data):
            try receivedChunk(hash, data, &r, now: now)
        case .chunkDelta(let hash, let bases, let delta):
            let size = r.download.current?.fetch.size(of: hash) ?? 0
            guard size > 0 else { return }  // not a chunk being fetched: ignored like a late duplicate
            // Each base is one of our own chunk files, checked against its name before use.
            var baseBytes: [Data] = []
            for b in bases {
                guard let d = try? r.chunks.read(b), Chunker.name(d) == b else { break }
                baseBytes.append(d)
            }
            // A delta that does not rebuild the named chunk is not retried as a delta: the whole chunk is asked for.
            guard baseBytes.count == bases.count,
                  let data = try? ByteDelta.apply(delta, bases: baseBytes, maxSize: min(size, Chunker.maximumSize)),
                  data.count == size, Chunker.name(data) == hash
            else {
                if r.logged.first("delta:\(hash)") {
                    logger.warning("Could not apply a chunk delta; asking for the whole chunk", metadata: ["chunk": "\(hash)"])
                }
                r.wantWhole.append(hash)
                return
            }
            try receivedChunk(hash, data, &r, now: now)
        case .tryLater(let seconds, let reason):
            r.download.tryLater(now: now, seconds: seconds)  // clamped into 1…3600 s
            logger.info(
                "Hub deferred the release download",
                metadata: ["retry_after_s": "\(RetryBackoff.clampPeerRetryAfter(seconds))", "reason": "\(reason)"])
        case .refuse(.releaseRefused, let reason, _):
            logger.error("Hub refused a release request", metadata: ["reason": "\(reason)"])
        default:
            break
        }
    }

    /// A chunk's bytes (sent whole, or rebuilt from a delta): verified, stored, counted.
    private func receivedChunk(_ hash: String, _ data: Data, _ r: inout SiteReleases, now: Int64) throws {
        do {
            switch try r.download.receive(hash: hash, bytes: data, into: r.chunks, now: now) {
            case .verified:
                state.withLock {
                    $0.status.chunksFetched += 1
                    $0.status.chunkBytesFetched += data.count
                    $0.status.chunkStoreError = nil
                }
                configuration.metrics.fetched(chunkBytes: data.count)
            case .mismatch(let refusal, let failures):
                // Asked for again after a growing backoff; logged once or twice per chunk, never per retry.
                if let note = SiteReleaseFetch.mismatchNote(hash: hash, refusal: refusal, failures: failures, logged: &r.logged) {
                    logger.log(note.level, note.message, note.metadata)
                }
            case .unexpected:
                break
            }
        } catch {
            // Left outstanding: asked for again after the fetch timeout and a backoff. Sync goes on.
            state.withLock { $0.status.chunkStoreError = "\(error)" }
            if r.logged.first("store:\(hash)") {
                logger.error("Cannot store a release chunk; will retry", metadata: ["chunk": "\(hash)", "error": "\(error)"])
            }
        }
    }

    private func accept(_ release: SignedRelease, _ r: inout SiteReleases, now: Int64) throws {
        // Expiry is judged on the hub-corrected clock: a PC clock years ahead must not freeze releases.
        switch r.download.offered(release, nowSeconds: (store.systemTime() + store.clockOffset) / 1_000) {
        case .alreadyHave:
            // The hub announced the release being fetched again (it repaired it, or we reconnected):
            // chunks backing off are asked for now.
            r.download.retryNow()
            return
        case .refuse(let refusal):
            // Nothing is staged or fetched; the installed release stays. Each offer is refused, once logged.
            if r.logged.first("refused:\(refusal)") { logger.error("Refused a release", metadata: ["reason": "\(refusal)"]) }
        case .fetch(let manifest):
            try store.stageRelease(version: manifest.version, manifest: release.manifestBytes, signatures: release.signaturesJSON)
            let missing = r.chunks.missing(manifest.chunks)
            // Retries of a chunk back off from 1/15 of the fetch timeout up to 20 timeouts (2 s … 10 min by default).
            r.download.begin(
                release, manifest: manifest, missing: missing, timeout: configuration.fetchTimeoutMilliseconds,
                backoff: .chunkRetries(timeout: configuration.fetchTimeoutMilliseconds), source: "the hub")
            r.rate.restart(now: now)
            r.logged = LogOnce()
            logger.info(
                "Fetching release",
                metadata: [
                    "release.version": "\(manifest.version)", "chunks.missing": "\(missing.count)",
                    "chunks.total": "\(manifest.chunks.count)", "bytes.missing": "\(missing.reduce(0) { $0 + $1.size })",
                ])
        }
    }

    /// Asks for more chunks within the window (and the rate cap); switches when all are present.
    private func fetchAndInstall(_ r: inout SiteReleases, dealer: ZMQSocket, now: Int64) throws {
        if !r.wantWhole.isEmpty {
            _ = try dealer.send(WireCodec.encode(.wholeChunkRequest(r.wantWhole), id: 0))
            r.wantWhole = []
        }
        switch SiteReleaseFetch.next(&r.download, cap: &r.rate, now: now) {
        case .install(let release, let manifest):
            try store.installRelease(manifest.curriculum, manifest: release.manifestBytes, signatures: release.signaturesJSON)
            r.download.didInstall(manifest.version)
            r.deltasRefused = false
            try store.retryQuarantine()
            // Chunks of older releases are no longer referenced: collect them now.
            let removed = r.chunks.collect(keeping: Set(manifest.chunks.map(\.hash)))
            logger.notice(
                "Release installed", metadata: ["release.version": "\(manifest.version)", "chunks.collected": "\(removed)"])
        case .request(let hashes):
            _ = try dealer.send(WireCodec.encode(.chunkRequest(hashes), id: 0))
        case .wait:
            break
        }
    }

    private func setConnected(_ c: Bool) { state.withLock { $0.status.connected = c } }

    /// Sends own batches beyond `after`, each message under the frame limit.
    private func upload(
        after: VersionVector, messages: Int, session: inout SiteSession, dealer: ZMQSocket, now: Int64
    ) throws {
        var cursor = after
        for _ in 0..<messages {
            var batches = try store.ownBatches(after: cursor, maxBytes: configuration.maxPayloadBytes)
            guard !batches.isEmpty else { return }
            if batches.count > WireLimits.maxBatchesPerMessage { batches = Array(batches.prefix(WireLimits.maxBatchesPerMessage)) }
            var upTo = VersionVector()
            for b in batches where b.lastSeq > upTo[b.origin] { upTo[b.origin] = b.lastSeq }
            let id = session.uploadMessageID()
            guard try dealer.send(WireCodec.encode(.batches(batches), id: id)) else { return }
            session.didSend(id: id, upTo: upTo, now: now)
            logger.debug(
                "Uploaded", metadata: [
                    "message_id": "\(id)", "batches": "\(batches.count)", "changes": "\(batches.reduce(0) { $0 + $1.changeCount })",
                    "up_to": "\(upTo)",
                ])
            cursor = cursor.merged(with: upTo)
            state.withLock { $0.status.uploadsSent += 1 }
            configuration.metrics.uploaded()
        }
    }
}
