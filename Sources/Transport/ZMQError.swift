internal import CZeroMQ

/// A libzmq call failed: the errno it left and the call that failed.
public struct ZMQError: Error, Equatable, CustomStringConvertible {
    public let code: Int32
    public let operation: String

    init(operation: String) {
        self.code = zmq_errno()
        self.operation = operation
    }

    public var description: String { "\(operation): \(String(cString: zmq_strerror(code)))" }

    /// The call would have blocked (EAGAIN).
    public var wouldBlock: Bool { code == EAGAIN }
    /// The context is shutting down (ETERM).
    public var contextTerminated: Bool { code == ETERM }
    /// The peer is not connected (EHOSTUNREACH on a ROUTER with ROUTER_MANDATORY).
    public var hostUnreachable: Bool { code == EHOSTUNREACH }
}
