/// The sync engines' and the admin's publisher's failures, in the operator's terms: what happened
/// and what to check. (Refusals of a peer's input are not errors: they are counted per peer and
/// reason, ``DropReason``; store and chunk-file failures pass through as the store's own errors.)
public enum NodeError: Error, Equatable, CustomStringConvertible {
    /// The hub refused the release an admin published.
    case refused(String)
    case handshakeFailed
    case timedOut(Int)
    /// No TCP connection at all: nothing listens there, or the host is unknown or unreachable.
    case unreachable(String)

    public var description: String {
        switch self {
        case .refused(let why): "the hub refused the release: \(why)"
        case .handshakeFailed: "the hub refused the secure handshake: is this admin's transport key in the hub's trust file, and is --hub-key right?"
        case .unreachable(let endpoint): "cannot connect to the hub at \(endpoint) (connection refused, unknown host or no route): is the hub running, and is the address right?"
        case .timedOut(let s): "no answer from the hub for \(s) s; is it running and reachable? (publishing resumes where it stopped when run again)"
        }
    }
}
