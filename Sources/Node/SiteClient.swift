public import Foundation
public import Logging
public import Sodium
public import Store
public import Merge
import Synchronization
import Transport
import Wire

/// The site's sync engine: one CURVE DEALER to the hub (whose key is pinned), driven by a
/// ``SiteSession``. Local writes are sealed and uploaded at once while connected; after any
/// interruption the session resumes from what the hub acknowledged.
public final class SiteClient: Sendable {
    public struct Configuration: Sendable {
        public var hubEndpoint: String
        public var hubTransportKey: Data
        public var transportKeys: BoxKeyPair
        /// First reconnect delay; each site adds its own random jitter of up to twice this, and
        /// libzmq doubles it up to `reconnectMax` (3,321 sites must not reconnect in one second).
        public var reconnectBase: Int32 = 1_000
        public var reconnectMax: Int32 = 300_000
        /// Bytes of batches per message: with the hub's credit this bounds what is in flight.
        public var maxPayloadBytes = 256 * 1_024
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
    }

    public let store: NodeStore
    let configuration: Configuration
    let logger: Logger
    let wakePipe: WakePipe
    let stopping = Atomic<Bool>(false)
    let state = Mutex<(status: Status, finished: Bool)>((Status(), false))

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
            do {
                try self.run()
            } catch {
                logger.critical("Site sync loop stopped", metadata: ["error": "\(error)"])
            }
            state.withLock { $0.finished = true }
        }
        thread.name = "hocvu-site"
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
        let jitter = Int32.random(in: 0...(2 * configuration.reconnectBase))
        try dealer.setReconnect(initial: configuration.reconnectBase + jitter, max: configuration.reconnectMax)
        try dealer.setHeartbeat(interval: 10_000, timeout: 30_000)
        try dealer.setImmediate()
        try dealer.setMaxFrameSize(Int64(WireLimits.maxPayloadBytes + 4_096))
        let monitor = try dealer.monitor(context)
        try dealer.connect(configuration.hubEndpoint)

        var session = SiteSession(origin: try store.currentOrigin())
        var lastTick: Int64 = 0
        while !stopping.load(ordering: .relaxed) {
            let readable = try zmqPoll([dealer, monitor], fds: [wakePipe.readFD], timeoutMilliseconds: 1_000)
            let now = NodeStore.systemNow()
            var actions = [SiteSession.Action]()
            if readable.fds[0] { wakePipe.drain() }
            if readable.sockets[1] {
                for event in try monitor.receiveEvents() {
                    switch event {
                    case .handshakeSucceeded:
                        setConnected(true)
                        actions += session.connected(
                            now: now, knowledge: try store.versionVector(), releaseVersion: try store.curriculumVersion() ?? 0)
                    case .disconnected:
                        setConnected(false)
                        session.disconnected()
                    case .handshakeFailed:
                        logger.warning("Hub refused the secure handshake: is this site enrolled, and is the hub key right?")
                    case .other:
                        break
                    }
                }
            }
            if readable.sockets[0] {
                while let m = try dealer.receive(maxFrames: 3) {
                    do {
                        let (_, message) = try WireCodec.decode(m.frames)
                        if case .refuse(let code, let reason, _) = message {
                            logger.error("Hub refused this site", metadata: ["code": "\(code)", "reason": "\(reason)"])
                        }
                        actions += session.received(message, now: now)
                    } catch {
                        logger.warning("Dropped malformed message from hub", metadata: ["reason": "\(error)"])
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
            let s = session
            state.withLock {
                $0.status.lastHeardFromHub = s.lastHeard
                $0.status.unacknowledgedMessages = s.unacknowledgedMessages
                $0.status.hubHas = s.hubHas
                $0.status.clockOffsetMilliseconds = s.clockOffset
            }
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
            cursor = cursor.merged(with: upTo)
            state.withLock { $0.status.uploadsSent += 1 }
        }
    }
}
