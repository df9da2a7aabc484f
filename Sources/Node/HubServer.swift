public import Foundation
public import Logging
public import Sodium
public import Store
import Merge
public import Release
import Synchronization
import Transport
import Wire

/// The hub's sync engine: one CURVE ROUTER behind a ZAP handler that admits enrolled, unrevoked
/// site keys; merges batches from many sites per transaction and acknowledges after commit.
///
/// The sockets live on one dedicated thread (libzmq sockets are not thread-safe); the store is
/// used from that thread too, so a slow commit delays sockets, never corrupts them.
public final class HubServer: Sendable {
    public struct Configuration: Sendable {
        public var bind: String
        public var transportKeys: BoxKeyPair
        /// BATCHES messages a site may have unacknowledged.
        public var credit: UInt32 = 4
        public var maxMessagesPerTransaction = 512
        /// Changes merged per transaction at most: bounds how long a commit holds the loop, so
        /// acknowledgements keep flowing and sites never time out into resending.
        public var maxChangesPerTransaction = 40_000
        /// Curriculum releases: the pinned admin keys and where chunks live. Without it the hub
        /// neither accepts nor serves releases.
        public var releases: ReleaseSettings?
        /// The hub's identity key: signs each site's home feed (records of its learners recorded
        /// elsewhere). Without it no feed is sent.
        public var identity: SigningKeyPair?
        public init(bind: String, transportKeys: BoxKeyPair) {
            self.bind = bind
            self.transportKeys = transportKeys
        }
    }

    public struct ReleaseSettings: Sendable {
        public var trust: TrustPolicy
        public var chunkDirectory: String
        /// Sites fetching chunks at once; others are told when to come back.
        public var maxConcurrentTransfers = 64
        public var transferIdleMilliseconds: Int64 = 10_000
        public var retryAfterSeconds: UInt32 = 20
        public init(trust: TrustPolicy, chunkDirectory: String) {
            self.trust = trust
            self.chunkDirectory = chunkDirectory
        }
    }

    /// Counters an operator and tests read; computed from what happened, never reset.
    public struct Stats: Sendable, Equatable {
        public var messagesReceived = 0
        public var dropped: [String: Int] = [:]
        public var batchesApplied = 0
        public var batchesRefused = 0
        public var changesMerged = 0
        public var changesQuarantined = 0
        public var transactions = 0
        public var zapAllowed = 0
        public var zapDenied = 0
        public var connectedCommunes: Set<Int> = []
        public var alerts: [String] = []
        public var releaseVersion: UInt64 = 0
        public var releasesRefused = 0
        public var chunksServed = 0
        public var chunkBytesServed = 0
        public var chunksReceived = 0
        public var transfersDeferred = 0
        public var homeFeedEntriesSent = 0
    }

    public let store: NodeStore
    let configuration: Configuration
    let logger: Logger
    let stopping = Atomic<Bool>(false)
    let heartbeat = LoopHeartbeat()
    let newTrust = Mutex<TrustPolicy?>(nil)

    /// A new trust file (SIGHUP): admins' keys and thresholds for the next publish.
    public func reload(trust: TrustPolicy) { newTrust.withLock { $0 = trust } }

    /// True while the loop goes round; false once it stopped (asked to, or by an error).
    public var isAlive: Bool { !hasFinished && heartbeat.isFresh }
    public var hasFinished: Bool { state.withLock { $0.finished } }
    let state = Mutex<(stats: Stats, endpoint: String?, finished: Bool)>((Stats(), nil, false))

    public init(store: NodeStore, configuration: Configuration, logger: Logger) {
        self.store = store
        self.configuration = configuration
        self.logger = logger
    }

    public var stats: Stats { state.withLock { $0.stats } }

    /// Binds and starts serving on a dedicated thread.
    /// - Returns: the endpoint actually bound.
    public func start() throws -> String {
        let ready = DispatchSemaphore(value: 0)
        let startError = Mutex<(any Error)?>(nil)
        let thread = Thread { [self] in
            do {
                try self.serve { ready.signal() }
            } catch {
                startError.withLock { $0 = error }
                ready.signal()
                logger.critical("Hub loop stopped", metadata: ["error": "\(error)"])
            }
            state.withLock { $0.finished = true }
        }
        thread.name = "hocvu-hub"
        thread.start()
        ready.wait()
        if let e = startError.withLock({ $0 }) { throw e }
        return state.withLock { $0.endpoint! }
    }

    /// Asks the loop to finish its current transaction and stop; waits up to `timeout` seconds.
    public func stop(timeout: Double = 5) {
        stopping.store(true, ordering: .relaxed)
        let end = Date().addingTimeInterval(timeout)
        while !state.withLock({ $0.finished }) && Date() < end { usleep(10_000) }
    }

    private func count(_ f: (inout Stats) -> Void) { state.withLock { f(&$0.stats) } }

    private func serve(ready: () -> Void) throws {
        let context = try ZMQContext(maxSockets: 65_536)
        let zap = try ZAPHandler(context, domain: "hocvu")  // before any CURVE socket binds
        let router = try ZMQSocket(context, .router)
        try router.makeCurveServer(secretKey: configuration.transportKeys.secretKey, zapDomain: "hocvu")
        try router.setMaxFrameSize(Int64(WireLimits.maxPayloadBytes + 4_096))
        try router.setRouterMandatory()
        try router.setHeartbeat(interval: 10_000, timeout: 30_000)
        try router.setBacklog(1_024)
        try router.setHighWaterMarks(send: 10_000, receive: 100_000)
        let endpoint = try router.bind(configuration.bind)
        state.withLock { $0.endpoint = endpoint }
        logger.info("Hub listening", metadata: ["endpoint": "\(endpoint)"])
        ready()

        func openReleases(_ trust: TrustPolicy?) throws -> HubReleases? {
            guard let r = configuration.releases else { return nil }
            return try HubReleases(
                trust: trust ?? r.trust, chunks: ChunkStore(directory: r.chunkDirectory),
                limits: .init(
                    maxConcurrentTransfers: r.maxConcurrentTransfers, transferIdleMilliseconds: r.transferIdleMilliseconds,
                    retryAfterSeconds: r.retryAfterSeconds),
                store: store, logger: logger)
        }
        var releases = try openReleases(nil)
        var adminKeys = configuration.releases?.trust.transportKeys ?? []
        count { $0.releaseVersion = releases?.currentVersion ?? 0 }
        var registry = Registry(try store.enrollments())
        var dataVersion = try store.dataVersion()
        var sessions: [Data: Int] = [:]  // routing id → commune

        var feedCursors: [Data: UInt64] = [:]  // routing id → last home-feed entry sent (sites that take it)

        /// - Returns: whether the message was queued for the peer.
        @discardableResult
        func send(_ routing: Data, _ message: WireMessage, id: UInt64) -> Bool {
            do {
                if try router.send([routing] + WireCodec.encode(message, id: id)) { return true }
                count { $0.dropped["send-would-block", default: 0] += 1 }
            } catch let e as ZMQError where e.hostUnreachable {
                sessions[routing] = nil
                feedCursors[routing] = nil
            } catch {
                logger.warning("Send failed", metadata: ["error": "\(error)"])
            }
            return false
        }

        /// Asks the publishing admin for more chunks, or installs and announces a complete release.
        func advanceReleases() throws {
            guard releases != nil else { return }
            let step = try releases!.advancePublishing(now: NodeStore.systemNow(), store: store)
            if let admin = step.admin { for m in step.toAdmin { send(admin, m, id: 0) } }
            if let announce = step.announce {
                count { $0.releaseVersion = releases!.currentVersion }
                for routing in sessions.keys { send(routing, announce, id: 0) }
            }
        }

        func sendHomeFeed(_ routing: Data, commune: Int) throws {
            guard let identity = configuration.identity, var cursor = feedCursors[routing] else { return }
            while true {
                let entries = try store.homeFeed(commune: commune, after: cursor, limit: HomeFeedCodec.maxEntries)
                guard let last = entries.last else { break }
                // Only what was queued counts as sent: a full queue is retried after the next merge
                // or HELLO, never skipped.
                guard send(routing, HomeFeedCodec.seal(commune: commune, entries: entries, hub: identity), id: 0) else { break }
                cursor = last.seq
                count { $0.homeFeedEntriesSent += entries.count }
                if entries.count < HomeFeedCodec.maxEntries { break }
            }
            feedCursors[routing] = cursor
        }


        while !stopping.load(ordering: .relaxed) {
            heartbeat.beat()
            if let trust = newTrust.withLock({ t in defer { t = nil }; return t }), configuration.releases != nil {
                releases = try openReleases(trust)
                adminKeys = trust.transportKeys
                logger.notice("Trust file reloaded", metadata: ["threshold": "\(trust.threshold)", "admins": "\(trust.admins.count)"])
            }
            let readable = try zmqPoll([router, zap.socket], timeoutMilliseconds: 100)

            // Enrollment changes made by `hocvu hub enroll/revoke` (another connection).
            let v = try store.dataVersion()
            if v != dataVersion {
                dataVersion = v
                registry = Registry(try store.enrollments())
                for (routing, commune) in sessions where registry.byCommune[commune]?.isRevoked ?? true {
                    send(routing, .refuse(code: .revoked, reason: "this site's enrollment was revoked", retryAfterSeconds: 0), id: 0)
                    sessions[routing] = nil
                }
            }

            if readable.sockets[1] {
                let decisions = try zap.handlePending { key in
                    if adminKeys.contains(key) { return .allow(userID: "admin:" + key.hexString) }
                    guard let e = registry.byTransportKey[key] else { return .deny(reason: "transport key not enrolled") }
                    guard !e.isRevoked else { return .deny(reason: "site revoked") }
                    return .allow(userID: key.hexString)
                }
                count { s in
                    for d in decisions {
                        if case .allow = d { s.zapAllowed += 1 } else { s.zapDenied += 1 }
                    }
                }
            }
            // Publishing timers (a chunk the admin never sent is asked for again) run on idle rounds too.
            guard readable.sockets[0] else { try advanceReleases(); continue }

            var uploads: [(routing: Data, id: UInt64, commune: Int, batches: [Batch])] = []
            var received = 0
            var changes = 0
            while received < configuration.maxMessagesPerTransaction, changes < configuration.maxChangesPerTransaction,
                  let m = try router.receive(maxFrames: 4)
            {
                received += 1
                count { $0.messagesReceived += 1 }
                let routing = m.frames[0]
                if let user = m.userID, user.hasPrefix("admin:") {
                    try handleAdmin(Array(m.frames.dropFirst()), from: routing, releases: &releases) { _ = send($0, $1, id: $2) }
                    continue
                }
                // The peer is who the ZAP handler authenticated, never what it says it is.
                guard let user = m.userID, let key = Data(hex: user), let e = registry.byTransportKey[key] else {
                    count { $0.dropped["unauthenticated", default: 0] += 1 }
                    continue
                }
                if e.isRevoked {
                    send(routing, .refuse(code: .revoked, reason: "this site's enrollment was revoked", retryAfterSeconds: 0), id: 0)
                    continue
                }
                let decoded: (id: UInt64, message: WireMessage)
                do {
                    decoded = try WireCodec.decode(Array(m.frames.dropFirst()))
                } catch {
                    count { $0.dropped[error.statsKey, default: 0] += 1 }
                    logger.warning(
                        "Dropped malformed message",
                        metadata: ["site.commune": "\(e.communeCode)", "reason": "\(error)"])
                    if let refusal = error.refusal { send(routing, refusal, id: 0) }
                    continue
                }
                switch decoded.message {
                case .hello(let hello):
                    guard hello.origin.node.bytes == e.identityKey else {
                        send(routing, .refuse(code: .wrongIdentity, reason: "HELLO names an identity key not enrolled for this transport key", retryAfterSeconds: 0), id: decoded.id)
                        count { $0.dropped["wrong-identity", default: 0] += 1 }
                        continue
                    }
                    sessions[routing] = e.communeCode
                    feedCursors[routing] = hello.homeFeedCursor
                    let have = try store.versionVector().restricted(to: hello.origin.node)
                    let welcome = WireMessage.Welcome(
                        clockMilliseconds: NodeStore.systemNow(), have: have, credit: configuration.credit,
                        releaseVersion: try store.curriculumVersion() ?? 0)
                    send(routing, .welcome(welcome), id: decoded.id)
                    if let offer = releases?.offer(forSiteAt: hello.releaseVersion) { send(routing, offer, id: 0) }
                    try sendHomeFeed(routing, commune: e.communeCode)
                    count { $0.connectedCommunes.insert(e.communeCode) }
                    logger.info("Site connected", metadata: ["site.commune": "\(e.communeCode)"])
                case .batches(let batches):
                    guard sessions[routing] == e.communeCode else {
                        send(routing, .refuse(code: .protocolViolation, reason: "send HELLO first", retryAfterSeconds: 0), id: decoded.id)
                        count { $0.dropped["batches-before-hello", default: 0] += 1 }
                        continue
                    }
                    uploads.append((routing, decoded.id, e.communeCode, batches))
                    changes += batches.reduce(0) { $0 + $1.changeCount }
                case .chunkRequest(let hashes):
                    guard sessions[routing] == e.communeCode, releases != nil else {
                        count { $0.dropped["chunk-request-refused", default: 0] += 1 }
                        continue
                    }
                    serveChunks(hashes, to: routing, releases: &releases!) { _ = send($0, $1, id: $2) }
                default:
                    count { $0.dropped["unexpected-kind", default: 0] += 1 }
                }
            }
            try advanceReleases()
            guard !uploads.isEmpty else { continue }
            let fed = try merge(uploads, registry: registry) { _ = send($0, $1, id: $2) }
            if !fed.isEmpty {
                for (routing, commune) in sessions where fed.contains(commune) { try sendHomeFeed(routing, commune: commune) }
            }
        }
        logger.info("Hub stopped")
    }

    /// Messages from an admin's connection (admitted by the trust file's transport keys): publishing.
    private func handleAdmin(
        _ frames: [Data], from routing: Data, releases: inout HubReleases?, send: (Data, WireMessage, UInt64) -> Void
    ) throws {
        let decoded: (id: UInt64, message: WireMessage)
        do { decoded = try WireCodec.decode(frames) } catch {
            count { $0.dropped[error.statsKey, default: 0] += 1 }
            return
        }
        guard releases != nil else {
            send(routing, .refuse(code: .releaseRefused, reason: "this hub is not configured for releases (no trust file)", retryAfterSeconds: 0), decoded.id)
            return
        }
        switch decoded.message {
        case .releaseOffer(let release):
            let replies = releases!.adminOffered(release, from: routing, now: NodeStore.systemNow())
            if !replies.isEmpty { count { $0.releasesRefused += 1 } }
            for r in replies { send(routing, r, decoded.id) }
        case .chunk(let hash, let data):
            do {
                if try releases!.adminSentChunk(hash: hash, data: data, from: routing) { count { $0.chunksReceived += 1 } }
            } catch {
                // Disk full or unwritable: say so to the admin; nothing is installed half-way.
                logger.error("Cannot store a published chunk", metadata: ["error": "\(error)"])
                send(routing, .refuse(code: .releaseRefused, reason: "the hub cannot store chunks: \(error)", retryAfterSeconds: 0), 0)
            }
        default:
            count { $0.dropped["unexpected-kind", default: 0] += 1 }
        }
    }

    private func serveChunks(_ hashes: [String], to routing: Data, releases: inout HubReleases, send: (Data, WireMessage, UInt64) -> Void) {
        switch releases.siteRequested(hashes, from: routing, now: NodeStore.systemNow()) {
        case .tryLater(let seconds):
            count { $0.transfersDeferred += 1 }
            send(routing, .tryLater(seconds: seconds, reason: "the hub is serving its limit of \(releases.limits.maxConcurrentTransfers) release transfers"), 0)
        case .send(let held):
            for hash in held {
                do {
                    let data = try releases.chunks.read(hash)
                    send(routing, .chunk(hash: hash, data: data), 0)
                    count { $0.chunksServed += 1; $0.chunkBytesServed += data.count }
                } catch {
                    logger.error("Cannot read a chunk to serve", metadata: ["error": "\(error)"])
                }
            }
            if held.count < hashes.count { count { $0.dropped["unknown-chunk", default: 0] += hashes.count - held.count } }
        }
    }

    /// One transaction for every upload drained this round; then one ACK per message.
    /// - Returns: the communes whose home feed grew.
    private func merge(
        _ uploads: [(routing: Data, id: UInt64, commune: Int, batches: [Batch])], registry: Registry,
        send: (Data, WireMessage, UInt64) -> Void
    ) throws -> Set<Int> {
        var refusedByMessage = [Int: [String]]()
        var accepted = [Batch]()
        for (i, u) in uploads.enumerated() {
            let identity = registry.byCommune[u.commune]!.identityKey
            for b in u.batches {
                // A site may upload only its own origin's batches (relays come later).
                if b.origin.node.bytes == identity {
                    accepted.append(b)
                } else {
                    refusedByMessage[i, default: []].append("batch \(b.origin)#\(b.firstSeq): origin is not the sending site")
                }
            }
        }
        let report = try store.apply(accepted, heardFrom: Set(uploads.map(\.commune)), routeHome: registry.communeByNode)
        let vv = try store.versionVector()
        let refusedByOrigin = Dictionary(grouping: report.refused, by: { $0.origin.node })
        count { s in
            s.transactions += 1
            s.batchesApplied += report.appliedBatches
            s.batchesRefused += report.refused.count + refusedByMessage.values.reduce(0) { $0 + $1.count }
            s.changesMerged += report.mergedChanges
            s.changesQuarantined += report.quarantinedChanges
            s.alerts += report.newlyQuarantinedOrigins.map { "origin \($0) quarantined: equivocation or broken hash chain" }
        }
        for origin in report.newlyQuarantinedOrigins {
            logger.critical("Origin quarantined: equivocation or broken hash chain", metadata: ["origin": "\(origin)"])
        }
        for (i, u) in uploads.enumerated() {
            let identity = registry.byCommune[u.commune]!.identityKey
            let node = NodeID(bytes: identity)!
            let refused = (refusedByMessage[i] ?? []) + (refusedByOrigin[node] ?? []).map { "batch #\($0.firstSeq): \($0.reason)" }
            let ack = WireMessage.Ack(
                ackedMessageID: u.id, have: vv.restricted(to: node), credit: configuration.credit, refused: refused)
            send(u.routing, .ack(ack), u.id)
        }
        return report.fedCommunes
    }
}

/// Enrollments indexed the two ways the hub looks them up.
struct Registry {
    let byTransportKey: [Data: Enrollment]
    let byCommune: [Int: Enrollment]
    /// Each enrolled site's identity → its commune: where a change was recorded, for routing home.
    let communeByNode: [NodeID: Int]
    init(_ all: [Enrollment]) {
        byTransportKey = Dictionary(all.map { ($0.transportKey, $0) }, uniquingKeysWith: { a, _ in a })
        byCommune = Dictionary(all.map { ($0.communeCode, $0) }, uniquingKeysWith: { a, _ in a })
        communeByNode = Dictionary(all.compactMap { e in NodeID(bytes: e.identityKey).map { ($0, e.communeCode) } }, uniquingKeysWith: { a, _ in a })
    }
}

extension WireError {
    var statsKey: String {
        switch self {
        case .frameCount: "wrong-frame-count"
        case .envelopeTooLarge, .payloadTooLarge, .tooManyBatches: "oversized"
        case .unsupportedMajor: "unsupported-version"
        default: "malformed"
        }
    }
}
