internal import CZeroMQ
public import Foundation

/// Answers libzmq's ZAP requests (RFC 27) for CURVE connections.
///
/// Bind it **before** binding any CURVE server socket: a CURVE server with no ZAP handler
/// accepts every key. The decision is a function of the client's transport public key; the
/// User-Id returned becomes the `User-Id` property of every message from that connection, and is
/// how the hub identifies a peer (never by routing id or by anything the peer writes).
public final class ZAPHandler {
    public static let endpoint = "inproc://zeromq.zap.01"

    public enum Decision: Equatable, Sendable {
        case allow(userID: String)
        case deny(reason: String)
    }

    public let socket: ZMQSocket
    private let domain: String

    public init(_ context: ZMQContext, domain: String) throws {
        socket = try ZMQSocket(context, .rep)
        self.domain = domain
        try socket.bind(Self.endpoint)
    }

    /// Handles every waiting request with `decide(clientPublicKey)`.
    /// - Returns: the decisions made, for logging and metrics.
    @discardableResult
    public func handlePending(_ decide: (Data) -> Decision) throws -> [Decision] {
        var made = [Decision]()
        while let request = try socket.receive(maxFrames: 8) {
            let f = request.frames
            // version, request id, domain, address, routing id, mechanism, credentials...
            let version = f.count > 0 ? String(decoding: f[0], as: UTF8.self) : ""
            let requestID = f.count > 1 ? f[1] : Data()
            var decision = Decision.deny(reason: "malformed ZAP request")
            if f.count >= 7, version == "1.0" {
                let requestDomain = String(decoding: f[2], as: UTF8.self)
                let mechanism = String(decoding: f[5], as: UTF8.self)
                if requestDomain != domain {
                    decision = .deny(reason: "wrong ZAP domain")
                } else if mechanism != "CURVE" || f[6].count != 32 {
                    decision = .deny(reason: "only CURVE is accepted")
                } else {
                    decision = decide(f[6])
                }
            }
            let (code, text, user): (String, String, String) = switch decision {
            case .allow(let userID): ("200", "OK", userID)
            case .deny(let reason): ("400", reason, "")
            }
            try socket.send([Data("1.0".utf8), requestID, Data(code.utf8), Data(text.utf8), Data(user.utf8), Data()])
            made.append(decision)
        }
        return made
    }
}
