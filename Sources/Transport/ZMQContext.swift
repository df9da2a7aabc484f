internal import CZeroMQ

/// A libzmq context.
///
/// `@unchecked Sendable`: libzmq contexts are thread-safe (sockets are not; see ``ZMQSocket``).
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    /// - Parameter maxSockets: raise for a hub serving thousands of sites (also raise the
    ///   process's open-file limit: each peer is a file descriptor).
    public init(maxSockets: Int32 = 1_024) throws {
        guard zmq_has("curve") == 1 else { throw TransportError.curveUnavailable }
        guard let h = zmq_ctx_new() else { throw ZMQError(operation: "zmq_ctx_new") }
        handle = h
        zmq_ctx_set(h, ZMQ_MAX_SOCKETS, maxSockets)
    }

    /// Wakes every blocking call on this context's sockets with ETERM; sockets must still be closed.
    public func shutdown() { zmq_ctx_shutdown(handle) }

    deinit { zmq_ctx_term(handle) }
}

/// Transport-level failures that are not one libzmq call.
public enum TransportError: Error, Equatable, CustomStringConvertible {
    case curveUnavailable
    case invalidKey(String)

    public var description: String {
        switch self {
        case .curveUnavailable: "this libzmq was built without CURVE security; install Debian's libzmq5"
        case .invalidKey(let why): why
        }
    }
}
