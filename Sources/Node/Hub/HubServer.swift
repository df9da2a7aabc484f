public import Foundation
public import Logging
import Model
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
        /// A site heard within this counts as connected (sites send a keepalive every 30 s when idle).
        public var livenessWindowMilliseconds: Int64 = 90_000
        /// Seconds a site is told to wait (BUSY) before resending an upload the hub could not store
        /// because its disk is full.
        public var diskFullRetrySeconds: UInt32 = 60
        /// "Last heard" is written to the database at most this often per site.
        public var heardPersistIntervalMilliseconds: Int64 = 30_000
        /// How often the hub rewrites today's row of the trend (``NodeStore/snapshotDailyTotals()``).
        public var snapshotIntervalMilliseconds: Int64 = 3_600_000
        /// Curriculum releases: the pinned admin keys and where chunks live. Without it the hub
        /// neither accepts nor serves releases.
        public var releases: ReleaseSettings?
        /// The hub's identity key: signs each site's home feed (records of its learners recorded
        /// elsewhere). Without it no feed is sent.
        public var identity: SigningKeyPair?
        /// Event counters (refusals, merges, chunks served), incremented where each happens.
        public var metrics = HubMetrics()
        /// Several hub processes on one PostgreSQL database (docs/multi-hub.md): the shared batch
        /// log is the acknowledgement point and holds the enrollments; this hub's ``NodeStore``
        /// becomes its view, following the log. nil: the store alone (one hub on SQLite).
        public var sharedLog: (any SharedHubLog)?
        /// How often the view follows the log and enrollments are re-read from it (revocations
        /// made at another hub are enforced within this).
        public var followIntervalMilliseconds: Int64 = 250
        /// Batches applied from the log per follow step at most: the loop keeps serving meanwhile.
        public var followBatchesPerStep = 2_000
        /// Seconds a site is told to wait (BUSY) when the shared database cannot be reached.
        public var databaseRetrySeconds: UInt32 = 5
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
        /// Every message, batch or handshake refused, per site and reason: exact, never reset.
        public var refusals: [RefusalKey: Int] = [:]
        /// Refusals per reason, all sites together.
        public var dropped: [String: Int] {
            refusals.reduce(into: [:]) { $0[$1.key.reason, default: 0] += $1.value }
        }
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
        /// Bytes of the chunks served (their whole size, whether sent whole or as deltas).
        public var chunkBytesServed = 0
        /// Chunks sent as deltas against the previous release, and the deltas' bytes.
        public var chunkDeltasServed = 0
        public var chunkDeltaBytesServed = 0
        public var chunksReceived = 0
        public var transfersDeferred = 0
        public var homeFeedEntriesSent = 0
        /// Connections that said HELLO and are remembered (at most one per site).
        public var openSessions = 0
        /// Set while the last write to the hub's database failed for want of space (path, free
        /// bytes); uploads are then answered BUSY, not acknowledged. Cleared by the next merge.
        public var diskFull: String?
        /// Set while the shared database (``Configuration/sharedLog``) cannot be reached: uploads are
        /// answered BUSY, nothing is acknowledged. Cleared by the next append that commits.
        public var sharedLogUnavailable: String?
        /// Changes the shared log holds that this hub's view had not applied, at the last follow step.
        public var viewLagChanges = 0

        /// Counts a refusal that its own code has already logged (release chunks: logged once per chunk).
        mutating func countLogged(_ reason: DropReason) {
            refusals[RefusalKey(commune: nil, reason: reason.rawValue), default: 0] += 1
        }
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
    let completion = EngineCompletion()

    /// Returns once the loop has stopped, asked to (``stop(timeout:)``) or by an error.
    public func finished() async { await completion.wait() }
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
            // Named from inside: set before start, Linux keeps the creating thread's name (`top -H`, perf).
            Thread.current.name = "hocvu-hub"
            do {
                try self.serve { ready.signal() }
            } catch {
                startError.withLock { $0 = error }
                ready.signal()
                logger.critical("Hub loop stopped", metadata: ["error": "\(error)"])
            }
            state.withLock { $0.finished = true }
            completion.finish()
        }
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

    /// Counts a refusal already logged where it was decided (release chunks: once per chunk).
    private func countLogged(_ reason: DropReason) {
        count { $0.countLogged(reason) }
        configuration.metrics.refused(reason.rawValue, commune: nil)
    }

    /// Alerts for the operator: kept for status, counted for metrics.
    private func alert(_ alerts: [String]) {
        guard !alerts.isEmpty else { return }
        count { $0.alerts += alerts }
        configuration.metrics.alerted(alerts.count)
    }

    /// Only the hub's loop thread touches it.
    nonisolated(unsafe) private var logLimiter = LogRateLimiter()
    /// Only the hub's loop thread touches it: origins the follow step leaves alone until then.
    nonisolated(unsafe) private var followHeld: [Origin: Int64] = [:]

    /// Counts a refusal for `commune` (nil: not an enrolled site) and logs it at a bounded rate.
    private func refuse(_ reason: DropReason, commune: Int?, _ detail: @autoclosure () -> String, count n: Int = 1) {
        refuse(reason.rawValue, commune: commune, detail(), count: n)
    }

    /// Counts and logs (at a bounded rate) a refusal; `reason` is a ``DropReason`` or a store's batch code.
    private func refuse(_ reason: String, commune: Int?, _ detail: @autoclosure () -> String, count n: Int = 1) {
        let key = RefusalKey(commune: commune, reason: reason)
        count { $0.refusals[key, default: 0] += n }
        configuration.metrics.refused(reason, commune: commune, count: n)
        guard let suppressed = logLimiter.admit(key, now: NodeStore.systemNow()) else { return }
        var metadata: Logger.Metadata = ["reason": "\(reason)", "detail": "\(detail())"]
        metadata["site.commune"] = commune.map { "\($0)" } ?? "-"
        if suppressed > 0 { metadata["suppressed"] = "\(suppressed)" }
        logger.warning("Refused from peer", metadata: metadata)
    }

    /// The shared database could not be reached: say so at a bounded rate and in status; uploads are
    /// answered BUSY until an append commits again.
    private func noteSharedLogUnavailable(_ error: any Error) {
        let description = "the shared database cannot be reached: \(error)"
        count { $0.sharedLogUnavailable = description }
        let key = RefusalKey(commune: nil, reason: DropReason.databaseUnavailable.rawValue)
        guard let suppressed = logLimiter.admit(key, now: NodeStore.systemNow()) else { return }
        logger.error(
            "\(description): uploads are answered BUSY and nothing is acknowledged; check the database and the [store] settings",
            metadata: ["suppressed": "\(suppressed)"])
    }

    /// A write failed for want of space: say so (path, free space) at a bounded rate and in status.
    private func noteDiskFull() {
        let description = store.diskFullDescription()
        count { $0.diskFull = description }
        let key = RefusalKey(commune: nil, reason: DropReason.diskFull.rawValue)
        guard let suppressed = logLimiter.admit(key, now: NodeStore.systemNow()) else { return }
        logger.error(
            "\(description): uploads are answered BUSY and nothing unstored is acknowledged; free some space, the sites resend",
            metadata: ["suppressed": "\(suppressed)"])
    }

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
        let log = configuration.sharedLog
        var registry = Registry(try store.enrollments())
        var enrollmentVersion: Int64 = -1
        var lastFollow: Int64 = 0
        // While the shared database is down, nothing waits on it: HELLO and uploads get BUSY at
        // once, and only the follow step probes it, backing off (doubling to 30 s) while it fails.
        var logRetryAt: Int64 = 0
        var logBackoff = configuration.followIntervalMilliseconds
        func logFailed(_ error: any Error) {
            noteSharedLogUnavailable(error)
            let now = NodeStore.systemNow()
            logRetryAt = now + logBackoff
            logBackoff = min(max(1, logBackoff) * 2, 30_000)
        }
        func logServed() {
            guard logRetryAt != 0 || stats.sharedLogUnavailable != nil else { return }
            logRetryAt = 0
            logBackoff = configuration.followIntervalMilliseconds
            count { $0.sharedLogUnavailable = nil }
            logger.notice("The shared database answers again; taking uploads")
        }
        func logDown(now: Int64) -> Bool { log != nil && now < logRetryAt }
        /// Enrollments from the shared log, copied into the view (its report lists the sites).
        func reloadSharedEnrollments() throws -> Bool {
            guard let log else { return false }
            let v = try log.enrollmentVersion()
            guard v != enrollmentVersion else { return false }
            let all = try log.enrollments()
            // Enforced first: a view that cannot take the copy (full disk) must not delay a revocation.
            enrollmentVersion = v
            registry = Registry(all)
            do { try store.mirrorEnrollments(all) } catch {
                logger.warning("Could not copy the enrollments into this hub's view (its report lists sites from it)", metadata: ["error": "\(error)"])
            }
            return true
        }
        if log != nil {
            do { _ = try reloadSharedEnrollments() } catch {
                logFailed(error)  // starts with the view's copy; retried at each follow step
            }
        }
        var dataVersion = try store.dataVersion()
        var rosterImport = try store.lastRosterImport()
        // The trend (docs/data-model.md): today's totals, rewritten hourly; the day's last write stands.
        var lastSnapshot: Int64 = 0
        var snapshotDay = ""
        func snapshotIfDue(now: Int64) {
            let today = NodeStore.vietnamDay(now)
            let dayEnded = !snapshotDay.isEmpty && today != snapshotDay
            guard dayEnded || now - lastSnapshot >= configuration.snapshotIntervalMilliseconds else { return }
            lastSnapshot = now
            defer { snapshotDay = today }
            do {
                // The day that just ended gets its totals as they stood at its end (within a loop round).
                if dayEnded { try store.snapshotDailyTotals(day: snapshotDay) }
                try store.snapshotDailyTotals()
            } catch let error where NodeStore.isDiskFull(error) {
                noteDiskFull()
            } catch {
                logger.warning("Could not record today's totals for the trend", metadata: ["error": "\(error)"])
            }
        }
        // One pure session per connection (routing id): what the site may do is decided there.
        var sessions: [Data: HubSession] = [:]
        // Each commune's latest connection (it may be gone from `sessions` already).
        var routingByCommune: [Int: Data] = [:]
        // Health from any message, not only uploads: when each commune was last heard (any
        // authenticated message), and when that was last written to enrolled_site.last_heard_at.
        var heard: [Int: Int64] = [:]
        var heardPersisted: [Int: Int64] = [:]
        var heardCheckedAt: Int64 = 0
        /// Writes "last heard" at most every 30 s per site (uploads write it in their own transaction).
        /// Runs at most once a second: every site of a fleet reconnecting at once is new, and checked
        /// each loop round this was a commit (an fsync) per round plus two passes over every site.
        func persistHeard(now: Int64) throws {
            guard now - heardCheckedAt >= 1_000 || now < heardCheckedAt else { return }
            heardCheckedAt = now
            let due = Set(heard.filter { now - (heardPersisted[$0.key] ?? 0) >= configuration.heardPersistIntervalMilliseconds }.keys)
            if !due.isEmpty {
                do { try store.markHeard(due) } catch let error where NodeStore.isDiskFull(error) {
                    noteDiskFull()  // "last heard" is kept in memory meanwhile; status stays right
                    return
                }
            }
            for c in due { heardPersisted[c] = now }
            // Connected = heard within three keepalive intervals (a site sends one every 30 s when idle).
            let connected = Set(heard.filter { now - $0.value < configuration.livenessWindowMilliseconds }.keys)
            count { $0.connectedCommunes = connected; $0.openSessions = sessions.count }
        }

        /// - Returns: whether the message was queued for the peer.
        @discardableResult
        func send(_ routing: Data, _ message: WireMessage, id: UInt64) -> Bool {
            do {
                if try router.send([routing] + WireCodec.encode(message, id: id)) { return true }
                refuse(.sendWouldBlock, commune: sessions[routing]?.peer.commune, "the peer's queue is full; it will be resent")
            } catch let e as ZMQError where e.hostUnreachable {
                sessions[routing] = nil
            } catch {
                logger.warning("Send failed", metadata: ["error": "\(error)"])
            }
            return false
        }

        /// Sends a CHUNK whose payload frame is shared between the sites it goes to (no copy).
        func sendShared(_ routing: Data, _ envelope: Data, _ payload: SharedFrame) {
            do {
                if try router.send([routing, envelope], shared: payload) { return }
                refuse(.sendWouldBlock, commune: sessions[routing]?.peer.commune, "the peer's queue is full; it will be resent")
            } catch let e as ZMQError where e.hostUnreachable {
                sessions[routing] = nil
            } catch {
                logger.warning("Send failed", metadata: ["error": "\(error)"])
            }
        }

        /// Asks the publishing admin for more chunks, or installs and announces a complete release.
        func advanceReleases() throws {
            guard releases != nil else { return }
            let step = try releases!.advancePublishing(now: NodeStore.systemNow(), store: store)
            if let admin = step.admin { for m in step.toAdmin { send(admin, m, id: 0) } }
            if let announce = step.announce {
                count { $0.releaseVersion = releases!.currentVersion }
                for (routing, session) in sessions where session.isReady {
                    // As a delta to a site that holds the previous release.
                    send(routing, releases!.offer(forSiteAt: 0, manifestHash: session.installedManifestHash) ?? announce, id: 0)
                }
            }
        }

        func sendHomeFeed(_ routing: Data) throws {
            guard let identity = configuration.identity, let commune = sessions[routing]?.peer.commune,
                  var cursor = sessions[routing]?.homeFeedCursor
            else { return }
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
            sessions[routing]?.homeFeedCursor = cursor
        }

        /// Each upload of a round that stored nothing: counted per site, answered BUSY (resend later).
        func answerBusy(_ uploads: [Upload], _ reason: DropReason, _ why: String, retry: UInt32) {
            for u in uploads {
                refuse(reason, commune: u.peer.commune, "upload not stored: \(why)")
                send(u.routing, .refuse(code: .busy, reason: "\(why); nothing of this upload was stored: resend later", retryAfterSeconds: retry), id: u.id)
            }
        }

        /// Carries out what a session decided that needs nothing of this round's state.
        func perform(_ action: HubSession.Action, routing: Data, commune: Int) {
            switch action {
            case .send(let message, let id): send(routing, message, id: id)
            case .drop(let reason, let detail): refuse(reason, commune: commune, detail)
            default: break
            }
        }

        while !stopping.load(ordering: .relaxed) {
            heartbeat.beat()
            // Every round, busy or idle: a hub that always has messages must still keep its trend.
            snapshotIfDue(now: NodeStore.systemNow())
            if let trust = newTrust.withLock({ t in defer { t = nil }; return t }), configuration.releases != nil {
                releases = try openReleases(trust)
                adminKeys = trust.transportKeys
                logger.notice("Trust file reloaded", metadata: ["threshold": "\(trust.threshold)", "admins": "\(trust.admins.count)"])
            }
            let readable = try zmqPoll([router, zap.socket], timeoutMilliseconds: 100)

            func dropRevokedSessions() {
                for (routing, var session) in sessions where registry.byCommune[session.peer.commune]?.isRevoked ?? true {
                    sessions[routing] = nil
                    for action in session.revoked() { perform(action, routing: routing, commune: session.peer.commune) }
                }
            }
            // On a shared log: enrollments from it, and the view follows what other hubs appended.
            let followNow = NodeStore.systemNow()
            if log != nil, !logDown(now: followNow),
               followNow - lastFollow >= configuration.followIntervalMilliseconds || followNow < lastFollow
            {
                lastFollow = followNow
                do {
                    if try reloadSharedEnrollments() { dropRevokedSessions() }
                    let fed = try follow(registry: registry)
                    logServed()
                    for (routing, session) in sessions where session.isReady && fed.contains(session.peer.commune) {
                        try sendHomeFeed(routing)
                    }
                } catch let error as SharedLogError {
                    logFailed(error)
                } catch let error where NodeStore.isDiskFull(error) {
                    noteDiskFull()
                }
            }
            // Enrollment changes made by `hocvu hub enroll/revoke` (another connection).
            let v = try store.dataVersion()
            if v != dataVersion {
                dataVersion = v
                if log == nil { registry = Registry(try store.enrollments()) }
                dropRevokedSessions()
                // A roster import (`hocvu hub roster import`) appended to home feeds: push them now
                // rather than at each site's next HELLO.
                let imported = try store.lastRosterImport()
                if imported != rosterImport {
                    rosterImport = imported
                    for routing in sessions.keys { try sendHomeFeed(routing) }
                }
            }

            if readable.sockets[1] {
                let decisions = try zap.handlePending { key in
                    if adminKeys.contains(key) { return .allow(userID: "admin:" + key.hexString) }
                    guard let e = registry.byTransportKey[key] else {
                        refuse(.handshakeNotEnrolled, commune: nil, "transport key \(key.hexString.prefix(16))… is not enrolled")
                        return .deny(reason: "transport key not enrolled")
                    }
                    guard !e.isRevoked else {
                        refuse(.handshakeRevoked, commune: e.communeCode, "a revoked site tried to connect")
                        return .deny(reason: "site revoked")
                    }
                    return .allow(userID: key.hexString)
                }
                count { s in
                    for d in decisions {
                        if case .allow = d { s.zapAllowed += 1 } else { s.zapDenied += 1 }
                    }
                }
            }
            // Publishing timers (a chunk the admin never sent is asked for again) run on idle rounds too.
            guard readable.sockets[0] else {
                try advanceReleases()
                try persistHeard(now: NodeStore.systemNow())
                continue
            }

            var uploads: [Upload] = []
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
                    refuse(.unauthenticated, commune: nil, "message from a connection no enrolled key authenticated")
                    continue
                }
                heard[e.communeCode] = NodeStore.systemNow()
                let peer = HubSession.Peer(commune: e.communeCode, identityKey: e.identityKey, isRevoked: e.isRevoked)
                var session = sessions[routing].flatMap { $0.peer == peer ? $0 : nil } ?? HubSession(peer: peer)
                let decoded = Result { try WireCodec.decode(Array(m.frames.dropFirst())) }.mapError { $0 as? WireError ?? .malformedEnvelope }
                let actions = session.received(decoded, credit: configuration.credit, releasesEnabled: releases != nil)
                // Only a connection that said HELLO is remembered: an enrolled but hostile site that
                // opens connection after connection without HELLO cannot grow this table.
                sessions[routing] = session.isReady ? session : nil
                var welcomeRefused = false
                for action in actions where !welcomeRefused {
                    switch action {
                    case .merge(let id, let batches):
                        uploads.append(Upload(routing: routing, id: id, peer: peer, batches: batches))
                        // Decoding bounded each range (≤ 20,000 changes, ≤ 256 batches): no overflow.
                        changes += batches.reduce(0) { $0 + $1.changeCount }
                    case .welcome(let origin, let id):
                        // One connection per site: an older one of the same commune is forgotten
                        // (found through the index, not by a pass over every session per HELLO).
                        if let older = routingByCommune[peer.commune], older != routing, sessions[older]?.peer.commune == peer.commune {
                            sessions[older] = nil
                        }
                        routingByCommune[peer.commune] = routing
                        // On a shared log, what any hub acknowledged: the site resends nothing of it.
                        let have: VersionVector
                        let haveIDs: [Origin: Data]
                        do {
                            if logDown(now: NodeStore.systemNow()) { throw SharedLogError("still unreachable; retrying with backoff") }
                            if let log {
                                (have, haveIDs) = try log.welcomeState(of: origin.node)
                            } else {
                                have = try store.versionVector(of: [origin.node])
                                haveIDs = try store.lastBatchIDs(of: origin.node)
                            }
                        } catch let error as SharedLogError {
                            if !logDown(now: NodeStore.systemNow()) { logFailed(error) }
                            send(routing, .refuse(code: .busy, reason: "the hub cannot reach its database; try again later",
                                                  retryAfterSeconds: configuration.databaseRetrySeconds), id: id)
                            // Not welcomed: nothing else of this HELLO is served (no offer, no home feed).
                            sessions[routing] = nil
                            welcomeRefused = true
                            continue
                        }
                        var welcome = WireMessage.Welcome(
                            clockMilliseconds: NodeStore.systemNow(), have: have,
                            credit: configuration.credit, releaseVersion: try store.curriculumVersion() ?? 0)
                        // With the ids, a site restored from a backup sees that its history is not ours.
                        welcome.haveBatchIDs = haveIDs
                        send(routing, .welcome(welcome), id: id)
                        logger.info("Site connected", metadata: ["site.commune": "\(peer.commune)"])
                    case .offerRelease(let siteVersion):
                        if let offer = releases?.offer(forSiteAt: siteVersion, manifestHash: session.installedManifestHash) {
                            send(routing, offer, id: 0)
                        }
                    case .sendHomeFeed:
                        try sendHomeFeed(routing)
                    case .serveChunks(let hashes):
                        serveChunks(
                            hashes, to: routing, siteManifestHash: session.installedManifestHash, releases: &releases!,
                            sendShared: sendShared
                        ) { _ = send($0, $1, id: $2) }
                    case .serveWholeChunks(let hashes):
                        serveChunks(hashes, to: routing, siteManifestHash: nil, releases: &releases!, sendShared: sendShared) {
                            _ = send($0, $1, id: $2)
                        }
                    case .send, .drop:
                        perform(action, routing: routing, commune: peer.commune)
                    }
                }
            }
            try advanceReleases()
            let roundNow = NodeStore.systemNow()
            // Uploads mark their sites heard in the merge transaction.
            for u in uploads { heardPersisted[u.peer.commune] = roundNow }
            try persistHeard(now: roundNow)
            guard !uploads.isEmpty else { continue }
            defer { for u in uploads { sessions[u.routing]?.roundEnded() } }
            let fed: Set<Int>
            do {
                if logDown(now: roundNow) { throw SharedLogError("still unreachable; retrying with backoff") }
                fed = try merge(uploads, registry: registry) { _ = send($0, $1, id: $2) }
                count { $0.diskFull = nil }
                if log != nil { logServed() }
            } catch let error as SharedLogError {
                // Nothing of these uploads is committed to the shared log: none is acknowledged.
                if !logDown(now: roundNow) { logFailed(error) }
                answerBusy(uploads, .databaseUnavailable, "the hub cannot reach its database", retry: configuration.databaseRetrySeconds)
                continue
            } catch let error where NodeStore.isDiskFull(error) {
                // The transaction rolled back: nothing of these uploads is stored, so none is
                // acknowledged. BUSY makes each site resend from what the hub says it has.
                noteDiskFull()
                answerBusy(uploads, .diskFull, "the hub's disk is full", retry: configuration.diskFullRetrySeconds)
                continue
            }
            if !fed.isEmpty {
                for (routing, session) in sessions where session.isReady && fed.contains(session.peer.commune) { try sendHomeFeed(routing) }
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
            refuse(DropReason(error), commune: nil, "from an admin: \(error)")
            return
        }
        guard releases != nil else {
            send(routing, .refuse(code: .releaseRefused, reason: "this hub is not configured for releases (no trust file)", retryAfterSeconds: 0), decoded.id)
            return
        }
        switch decoded.message {
        case .releaseOffer(let release):
            let replies = releases!.adminOffered(release, from: routing, now: NodeStore.systemNow())
            let alerts = releases!.takeAlerts()  // a re-publish checks every chunk on disk
            if !replies.isEmpty { count { $0.releasesRefused += 1 } }
            alert(alerts)
            for r in replies { send(routing, r, decoded.id) }
        case .chunk(let hash, let data):
            do {
                // HubReleases logs once per chunk; the counters are exact.
                switch try releases!.adminSentChunk(hash: hash, data: data, from: routing, now: NodeStore.systemNow()) {
                case .stored:
                    count { $0.chunksReceived += 1 }
                case .ignored:
                    break
                case .rejected:
                    countLogged(.chunkFailedVerification)
                case .refused(let refusal):
                    // The same chunk failed verification again and again: refuse, do not retry forever.
                    countLogged(.chunkFailedVerification)
                    count { $0.releasesRefused += 1 }
                    send(routing, refusal, 0)
                }
            } catch {
                // Disk full or unwritable: say so to the admin (once) and stop fetching; nothing is installed half-way.
                logger.error("Cannot store a published chunk", metadata: ["error": "\(error)"])
                releases!.abandonPublishing()
                count { $0.releasesRefused += 1 }
                send(routing, .refuse(code: .releaseRefused, reason: "the hub cannot store chunks: \(error)", retryAfterSeconds: 0), 0)
            }
        default:
            refuse(.unexpectedKind, commune: nil, "a message kind an admin may not send")
        }
    }

    /// Carries out what ``HubReleaseServing`` decided for a site's chunk request: the disk reads
    /// and quarantines (through ``HubReleases``), the sends, the counts, the logs and the alerts.
    /// `siteManifestHash`: the site's installed manifest, when it takes deltas (nil: whole chunks).
    private func serveChunks(
        _ hashes: [String], to routing: Data, siteManifestHash: Data?, releases: inout HubReleases,
        sendShared: (Data, Data, SharedFrame) -> Void, send: (Data, WireMessage, UInt64) -> Void
    ) {
        let now = NodeStore.systemNow()
        var queue = releases.serving.siteRequested(hashes, from: routing, now: now) { UInt32.random(in: $0) }
        while !queue.isEmpty {
            switch queue.removeFirst() {
            case .send(let hash, let data):
                let message = releases.chunkMessage(hash, data: data, siteManifestHash: siteManifestHash, whole: false)
                if case .chunk = message {
                    // The same frame for every site, referenced by libzmq rather than copied.
                    let frames = releases.wholeChunkFrames(hash, data: data)
                    sendShared(routing, frames.envelope, frames.payload)
                } else {
                    send(routing, message, 0)
                }
                count {
                    $0.chunksServed += 1
                    $0.chunkBytesServed += data.count
                    if case .chunkDelta(_, _, let delta) = message {
                        $0.chunkDeltasServed += 1
                        $0.chunkDeltaBytesServed += delta.count
                    }
                }
                configuration.metrics.served(chunkBytes: data.count)
            case .tryLater(let seconds, let reason):
                count { $0.transfersDeferred += 1 }
                configuration.metrics.deferredTransfer()
                send(routing, .tryLater(seconds: seconds, reason: reason), 0)
            case .read(let hash, let size):
                queue += releases.check(hash, size: size, forSite: true, now: now)
            case .quarantine(let hash, let why):
                queue += releases.quarantine(hash, why: why, now: now)
            case .refuse(let reason, let n, let detail):
                refuse(reason, commune: nil, detail, count: n)
            case .countLogged(let reason):
                countLogged(reason)
            case .alert(let alert):
                self.alert([alert])
            case .log(let level, let message, let metadata):
                logger.log(level, message, metadata)
            }
        }
    }

    /// One transaction for every upload drained this round; then one ACK per message.
    /// - Returns: the communes whose home feed grew.
    private func merge(_ uploads: [Upload], registry: Registry, send: (Data, WireMessage, UInt64) -> Void) throws -> Set<Int> {
        var refusedByMessage = [Int: [WireMessage.Ack.Refusal]]()
        var accepted = [Batch]()
        for (i, u) in uploads.enumerated() {
            let own = u.peer.ownBatches(u.batches)
            accepted += own.accepted
            if !own.refused.isEmpty { refusedByMessage[i] = own.refused }
        }
        let uploaders = Set(uploads.compactMap { NodeID(bytes: $0.peer.identityKey) })
        let report: ApplyReport
        let vv: VersionVector
        if let log = configuration.sharedLog {
            (report, vv) = try appendToLog(accepted, log: log, heardFrom: Set(uploads.map(\.peer.commune)), registry: registry, uploaders: uploaders)
        } else {
            report = try store.apply(accepted, heardFrom: Set(uploads.map(\.peer.commune)), routeHome: registry.communeByNode)
            // Only the uploading sites' part: each ACK carries its own site's.
            vv = try store.versionVector(of: uploaders)
        }
        let refusedByOrigin = Dictionary(grouping: report.refused, by: { $0.origin.node })
        count { s in
            s.transactions += 1
            s.batchesApplied += report.appliedBatches
            s.batchesRefused += report.refused.count + refusedByMessage.values.reduce(0) { $0 + $1.count }
            s.changesMerged += report.mergedChanges
            s.changesQuarantined += report.quarantinedChanges
        }
        configuration.metrics.merged(batches: report.appliedBatches, changes: report.mergedChanges)
        alert(report.newlyQuarantinedOrigins.map { "origin \($0) quarantined: equivocation or broken hash chain" })
        logger.debug(
            "Merged", metadata: [
                "messages": "\(uploads.count)", "sites": "\(Set(uploads.map(\.peer.commune)).count)",
                "batches_applied": "\(report.appliedBatches)", "changes_merged": "\(report.mergedChanges)",
                "batches_refused": "\(report.refused.count)", "changes_quarantined": "\(report.quarantinedChanges)",
            ])
        for origin in report.contestedHomeClaims {
            refuse(.homeContested, commune: registry.communeByNode[origin.node],
                   "a learner change claims a home commune other than the one first registered; the first claim holds")
        }
        for origin in report.newlyQuarantinedOrigins {
            logger.critical("Origin quarantined: equivocation or broken hash chain", metadata: ["origin": "\(origin)"])
        }
        for (i, u) in uploads.enumerated() {
            guard let node = NodeID(bytes: u.peer.identityKey) else { continue }  // enrollment checked the length
            let refused = (refusedByMessage[i] ?? [])
                + (refusedByOrigin[node] ?? []).map { .init(code: $0.reason.code, reason: "batch #\($0.firstSeq): \($0.reason)") }
            for r in refused { refuse(r.code, commune: u.peer.commune, r.reason) }
            let ack = WireMessage.Ack(
                ackedMessageID: u.id, have: vv.restricted(to: node), credit: configuration.credit, refused: refused)
            send(u.routing, .ack(ack), u.id)
            logger.trace("ACK", metadata: ["site.commune": "\(u.peer.commune)", "message_id": "\(u.id)", "have": "\(ack.have)", "refused": "\(refused.count)"])
        }
        return report.fedCommunes
    }
}

extension HubServer {
    /// On a shared log: the batches are checked once, appended to the log (the commit that makes
    /// them acknowledged), then merged into this hub's view. The view may refuse a batch the log
    /// took (it has not yet followed an earlier one of the origin that another hub appended); the
    /// follow step brings it in. Refusals and the acknowledged vector are the log's.
    func appendToLog(
        _ batches: [Batch], log: any SharedHubLog, heardFrom: Set<Int>, registry: Registry, uploaders: Set<NodeID>
    ) throws -> (ApplyReport, VersionVector) {
        // Every signature is checked: a batch claiming this view's own origin is a peer's claim here
        // (the log is shared, the hubs' own origins never enter it).
        let prepared = PreparedBatch.prepareAll(batches, localOrigin: Self.noOrigin)
        let decisions = try log.append(prepared)
        var report = ApplyReport()
        var toView = [PreparedBatch]()
        for (p, d) in zip(prepared, decisions) {
            switch d {
            case .accept: toView.append(p)
            case .duplicate: report.duplicateBatches += 1
            case .refuse(let reason):
                report.refused.append(.init(origin: p.batch.origin, firstSeq: p.batch.firstSeq, reason: reason))
            case .quarantineOrigin(_, let reason):
                report.refused.append(.init(origin: p.batch.origin, firstSeq: p.batch.firstSeq, reason: reason))
                if !report.newlyQuarantinedOrigins.contains(p.batch.origin) { report.newlyQuarantinedOrigins.append(p.batch.origin) }
            }
        }
        let vv = try log.versionVector(of: uploaders)
        let view = try store.apply(prepared: toView, heardFrom: heardFrom, routeHome: registry.communeByNode)
        report.appliedBatches = toView.count
        report.mergedChanges = view.mergedChanges
        report.quarantinedChanges = view.quarantinedChanges
        report.contestedHomeClaims = view.contestedHomeClaims
        report.fedCommunes = view.fedCommunes
        return (report, vv)
    }

    /// An origin no batch can claim (a node id of zeros is no Ed25519 key).
    static let noOrigin = Origin(node: NodeID(bytes: Data(count: 32))!, epoch: 0)

    /// One follow step: the batches other hubs appended that this view lacks, at most
    /// ``Configuration/followBatchesPerStep``, merged like uploads (home feeds included).
    /// - Returns: the communes whose home feed grew.
    func follow(registry: Registry) throws -> Set<Int> {
        guard let log = configuration.sharedLog else { return [] }
        let heads = try log.heads()
        let mine = try store.versionVector()
        var behind = [(Origin, UInt64)]()
        var lag = 0
        let now = NodeStore.systemNow()
        for (origin, seq) in heads.entries where seq > mine[origin] {
            lag &+= Int(clamping: seq - mine[origin])
            // An origin whose batches this view refused is left alone for a while (see below).
            if let until = followHeld[origin], now < until { continue }
            behind.append((origin, mine[origin]))
        }
        state.withLock { $0.stats.viewLagChanges = lag }
        guard !behind.isEmpty else { return [] }
        var batches = [Batch]()
        // In random order: one origin with a long backlog cannot keep the others waiting.
        for (origin, after) in behind.shuffled() where batches.count < configuration.followBatchesPerStep {
            batches += try log.batches(of: origin, after: after, limit: configuration.followBatchesPerStep - batches.count)
        }
        let report = try store.apply(batches, routeHome: registry.communeByNode)
        // The view refuses what the log took only when the two disagree (a view restored or left
        // ahead of a failed-over database, an origin it quarantined before): fetching it again every
        // step would spin, so that origin waits 60 s, and it is said once a minute.
        for r in report.refused {
            followHeld[r.origin] = now + 60_000
            let key = RefusalKey(commune: nil, reason: "view_refused_log_batch")
            if let suppressed = logLimiter.admit(key, now: now) {
                logger.warning(
                    "This hub's view refuses a batch the shared log holds; that origin is retried in a minute. If it persists, rebuild the view (docs/operations.md)",
                    metadata: ["origin": "\(r.origin)", "first_seq": "\(r.firstSeq)", "reason": "\(r.reason)", "suppressed": "\(suppressed)"])
            }
        }
        logger.debug("Followed the shared log", metadata: ["batches": "\(batches.count)", "changes_merged": "\(report.mergedChanges)"])
        return report.fedCommunes
    }
}

/// One BATCHES message taken this round, merged in the round's transaction and acknowledged after it.
struct Upload {
    let routing: Data
    let id: UInt64
    let peer: HubSession.Peer
    let batches: [Batch]
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
    /// The refusal code it is counted under (docs/protocol.md, "Refusal codes").
    var statsKey: String { DropReason(self).rawValue }
}
