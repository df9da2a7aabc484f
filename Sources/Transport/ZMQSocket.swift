internal import CZeroMQ
public import Foundation

/// One received multipart message with the properties libzmq attached to it.
public struct ZMQMessage: Sendable {
    public var frames: [Data]
    /// The User-Id the ZAP handler returned for the connection it came on (CURVE peers only).
    public var userID: String?
}

/// A libzmq socket.
///
/// Not `Sendable`: libzmq sockets must be used from one thread at a time. Each daemon confines its
/// sockets to the one thread that runs its event loop.
public final class ZMQSocket {
    public enum Kind { case router, dealer, rep, req, pair }

    let handle: UnsafeMutableRawPointer
    /// Keeps the context alive while this socket is open: `zmq_ctx_term` waits for every socket.
    private let context: ZMQContext
    private var closed = false

    public init(_ context: ZMQContext, _ kind: Kind) throws {
        let type: Int32 = switch kind {
        case .router: ZMQ_ROUTER
        case .dealer: ZMQ_DEALER
        case .rep: ZMQ_REP
        case .req: ZMQ_REQ
        case .pair: ZMQ_PAIR
        }
        guard let h = zmq_socket(context.handle, type) else { throw ZMQError(operation: "zmq_socket") }
        handle = h
        self.context = context
        // Never block context termination on unsent messages (libzmq's default linger is forever).
        try set(ZMQ_LINGER, 0)
    }

    deinit { close() }

    public func close() {
        guard !closed else { return }
        closed = true
        zmq_close(handle)
    }

    // MARK: options

    func set(_ option: Int32, _ value: Int32) throws {
        var v = value
        guard zmq_setsockopt(handle, option, &v, MemoryLayout<Int32>.size) == 0 else {
            throw ZMQError(operation: "zmq_setsockopt(\(option))")
        }
    }

    func set64(_ option: Int32, _ value: Int64) throws {
        var v = value
        guard zmq_setsockopt(handle, option, &v, MemoryLayout<Int64>.size) == 0 else {
            throw ZMQError(operation: "zmq_setsockopt(\(option))")
        }
    }

    func setBytes(_ option: Int32, _ value: Data) throws {
        let rc = value.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }
        guard rc == 0 else { throw ZMQError(operation: "zmq_setsockopt(\(option))") }
    }

    func setBytes(_ option: Int32, _ value: String) throws { try setBytes(option, Data(value.utf8)) }

    /// Largest frame accepted from a peer; larger ones drop the connection (libzmq's rule).
    public func setMaxFrameSize(_ bytes: Int64) throws { try set64(ZMQ_MAXMSGSIZE, bytes) }

    /// ZMTP heartbeats: a silent peer is dropped after `timeout`.
    public func setHeartbeat(interval: Int32, timeout: Int32) throws {
        try set(ZMQ_HEARTBEAT_IVL, interval)
        try set(ZMQ_HEARTBEAT_TIMEOUT, timeout)
        try set(ZMQ_HEARTBEAT_TTL, timeout)
    }

    public func setReconnect(initial: Int32, max: Int32) throws {
        try set(ZMQ_RECONNECT_IVL, initial)
        try set(ZMQ_RECONNECT_IVL_MAX, max)
    }

    /// Queue only to completed connections (a DEALER then does not buffer into the void).
    public func setImmediate() throws { try set(ZMQ_IMMEDIATE, 1) }

    public func setBacklog(_ n: Int32) throws { try set(ZMQ_BACKLOG, n) }

    public func setHighWaterMarks(send: Int32, receive: Int32) throws {
        try set(ZMQ_SNDHWM, send)
        try set(ZMQ_RCVHWM, receive)
    }

    /// A ROUTER fails sends to unknown peers with EHOSTUNREACH instead of dropping silently.
    /// Every send must then be non-blocking.
    public func setRouterMandatory() throws { try set(ZMQ_ROUTER_MANDATORY, 1) }

    /// Makes this socket a CURVE server that asks the ZAP handler about every client.
    public func makeCurveServer(secretKey: Data, zapDomain: String) throws {
        guard secretKey.count == 32 else { throw TransportError.invalidKey("CURVE secret key must be 32 bytes") }
        try setBytes(ZMQ_ZAP_DOMAIN, zapDomain)
        try set(CZeroMQ_ZAP_ENFORCE_DOMAIN, 1)
        try set(ZMQ_CURVE_SERVER, 1)
        try setBytes(ZMQ_CURVE_SECRETKEY, secretKey)
    }

    /// Makes this socket a CURVE client that accepts only the server key `serverKey` (pinned).
    public func makeCurveClient(publicKey: Data, secretKey: Data, serverKey: Data) throws {
        guard publicKey.count == 32, secretKey.count == 32, serverKey.count == 32 else {
            throw TransportError.invalidKey("CURVE keys must be 32 bytes")
        }
        try setBytes(ZMQ_CURVE_SERVERKEY, serverKey)
        try setBytes(ZMQ_CURVE_PUBLICKEY, publicKey)
        try setBytes(ZMQ_CURVE_SECRETKEY, secretKey)
    }

    // MARK: endpoints

    /// Binds and returns the endpoint actually bound (useful with `tcp://127.0.0.1:*`).
    @discardableResult
    public func bind(_ endpoint: String) throws -> String {
        guard zmq_bind(handle, endpoint) == 0 else { throw ZMQError(operation: "zmq_bind(\(endpoint))") }
        var buffer = [CChar](repeating: 0, count: 256)
        var size = buffer.count
        guard zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buffer, &size) == 0 else {
            throw ZMQError(operation: "zmq_getsockopt(LAST_ENDPOINT)")
        }
        return String(cString: buffer)
    }

    public func connect(_ endpoint: String) throws {
        guard zmq_connect(handle, endpoint) == 0 else { throw ZMQError(operation: "zmq_connect(\(endpoint))") }
    }

    /// Stops connecting to `endpoint` (and drops what was queued for it).
    public func disconnect(_ endpoint: String) throws {
        guard zmq_disconnect(handle, endpoint) == 0 else { throw ZMQError(operation: "zmq_disconnect(\(endpoint))") }
    }

    // MARK: messages

    /// Sends a multipart message without blocking.
    /// - Returns: false when it would block (peer's queue full, or no connection yet).
    @discardableResult
    public func send(_ frames: [Data]) throws -> Bool {
        for (i, frame) in frames.enumerated() {
            let flags = ZMQ_DONTWAIT | (i < frames.count - 1 ? ZMQ_SNDMORE : 0)
            let rc = frame.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
            if rc < 0 {
                let e = ZMQError(operation: "zmq_send")
                // libzmq sends multipart atomically: a failure on the first frame sends nothing.
                if e.wouldBlock && i == 0 { return false }
                throw e
            }
        }
        return true
    }

    /// Sends `frames` followed by `shared` as the last frame, without blocking and without copying
    /// `shared`: libzmq references its bytes and releases them when the frame has gone (or the
    /// send failed). For the same bytes sent to many peers (a release chunk during a rollout).
    /// - Returns: false when it would block (peer's queue full, or no connection yet).
    @discardableResult
    public func send(_ frames: [Data], shared: SharedFrame) throws -> Bool {
        for (i, frame) in frames.enumerated() {
            let rc = frame.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, ZMQ_DONTWAIT | ZMQ_SNDMORE) }
            if rc < 0 {
                let e = ZMQError(operation: "zmq_send")
                if e.wouldBlock && i == 0 { return false }
                throw e
            }
        }
        let msg = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
        defer { msg.deallocate() }
        // libzmq owns one reference until it calls the free function (from its I/O thread).
        let hint = Unmanaged.passRetained(shared).toOpaque()
        guard zmq_msg_init_data(msg, shared.bytes, shared.count, { _, hint in
            if let hint { Unmanaged<SharedFrame>.fromOpaque(hint).release() }
        }, hint) == 0 else {
            Unmanaged<SharedFrame>.fromOpaque(hint).release()
            throw ZMQError(operation: "zmq_msg_init_data")
        }
        if zmq_msg_send(msg, handle, ZMQ_DONTWAIT) < 0 {
            let e = ZMQError(operation: "zmq_msg_send")
            zmq_msg_close(msg)  // not sent: still ours; closing calls the free function
            if e.wouldBlock && frames.isEmpty { return false }
            throw e
        }
        return true
    }

    /// Receives one whole multipart message without blocking; nil when none is waiting.
    /// Frames past `maxFrames` are read and dropped, and the message is marked by returning
    /// `maxFrames + 1` frames so the caller can refuse it.
    public func receive(maxFrames: Int = 8) throws -> ZMQMessage? {
        let msg = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
        defer { msg.deallocate() }
        var frames = [Data]()
        var userID: String?
        var first = true
        while true {
            zmq_msg_init(msg)
            defer { zmq_msg_close(msg) }
            if zmq_msg_recv(msg, handle, first ? ZMQ_DONTWAIT : 0) < 0 {
                let e = ZMQError(operation: "zmq_msg_recv")
                if e.wouldBlock && first { return nil }
                throw e
            }
            // A ROUTER's routing-id frame is made locally and carries no metadata: ask every frame.
            if userID == nil, let p = zmq_msg_gets(msg, "User-Id") { userID = String(cString: p) }
            first = false
            if frames.count <= maxFrames {
                frames.append(Data(bytes: zmq_msg_data(msg), count: zmq_msg_size(msg)))
            }
            if zmq_msg_more(msg) == 0 { break }
        }
        return ZMQMessage(frames: frames, userID: userID)
    }
}

/// Waits until one of `sockets` can be read, or `fds` (e.g. a wake-up pipe) is readable, or
/// `timeoutMilliseconds` passes (-1: forever).
/// - Returns: which sockets and which fds are readable, by index.
public func zmqPoll(
    _ sockets: [ZMQSocket], fds: [Int32] = [], timeoutMilliseconds: Int
) throws -> (sockets: [Bool], fds: [Bool]) {
    var items = sockets.map { zmq_pollitem_t(socket: $0.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0) }
    items += fds.map { zmq_pollitem_t(socket: nil, fd: $0, events: Int16(ZMQ_POLLIN), revents: 0) }
    let rc = zmq_poll(&items, Int32(items.count), timeoutMilliseconds)
    if rc < 0 {
        let e = ZMQError(operation: "zmq_poll")
        if e.code == EINTR { return (sockets.map { _ in false }, fds.map { _ in false }) }
        throw e
    }
    let ready = items.map { $0.revents & Int16(ZMQ_POLLIN) != 0 }
    return (Array(ready[0..<sockets.count]), Array(ready[sockets.count...]))
}

/// Connection events a socket monitor reports.
public enum ZMQEvent: Equatable, Sendable {
    case handshakeSucceeded
    case disconnected
    case handshakeFailed
    /// A connection attempt failed (refused, unreachable, unknown host); libzmq retries after
    /// `retryMilliseconds`.
    case connectRetried(retryMilliseconds: UInt32)
    case other(UInt16)
}

extension ZMQSocket {
    /// Starts a monitor on this socket and returns the PAIR socket its events arrive on.
    public func monitor(_ context: ZMQContext) throws -> ZMQSocket {
        let endpoint = "inproc://hocvu-monitor-\(UInt(bitPattern: handle))"
        let events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
            | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_CONNECT_RETRIED
        guard zmq_socket_monitor(handle, endpoint, events) == 0 else { throw ZMQError(operation: "zmq_socket_monitor") }
        let pair = try ZMQSocket(context, .pair)
        try pair.connect(endpoint)
        return pair
    }

    /// Reads every waiting monitor event (on a socket returned by ``monitor(_:)``).
    public func receiveEvents() throws -> [ZMQEvent] {
        var out = [ZMQEvent]()
        while let m = try receive(maxFrames: 2) {
            guard let f = m.frames.first, f.count >= 2 else { continue }
            let code = UInt16(f[f.startIndex]) | UInt16(f[f.startIndex + 1]) << 8
            switch Int32(code) {
            case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: out.append(.handshakeSucceeded)
            case ZMQ_EVENT_DISCONNECTED: out.append(.disconnected)
            case ZMQ_EVENT_CONNECT_RETRIED:
                // Frame 1: event (u16) then value (u32), little-endian: the next retry interval.
                var value: UInt32 = 0
                if f.count >= 6 { for i in 0..<4 { value |= UInt32(f[f.startIndex + 2 + i]) << (8 * UInt32(i)) } }
                out.append(.connectRetried(retryMilliseconds: value))
            case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL,
                 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: out.append(.handshakeFailed)
            default: out.append(.other(code))
            }
        }
        return out
    }
}

/// Bytes sent as a frame without copying (``ZMQSocket/send(_:shared:)``): allocated once and
/// freed when the last frame referencing them has gone.
///
/// `@unchecked Sendable`: the bytes are written once in `init` and only read afterwards (by
/// libzmq's I/O thread while a frame is in flight); the reference count is atomic.
public final class SharedFrame: @unchecked Sendable {
    let bytes: UnsafeMutableRawPointer
    public let count: Int

    public init(_ data: Data) {
        count = data.count
        bytes = UnsafeMutableRawPointer.allocate(byteCount: max(1, data.count), alignment: 16)
        data.withUnsafeBytes { if let base = $0.baseAddress { bytes.copyMemory(from: base, byteCount: $0.count) } }
    }

    deinit { bytes.deallocate() }
}
