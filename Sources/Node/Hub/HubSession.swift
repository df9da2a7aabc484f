public import Foundation
public import Merge
public import Model
public import Wire

/// Why the hub dropped or refused something from a peer: the stable codes of docs/protocol.md
/// ("Refusal codes"), counted per site and reason and shown in status and metrics. Batch-level
/// refusals decided by the store (`bad_signature`, `chain_broken`, …) keep the store's codes.
public enum DropReason: String, Sendable, CaseIterable {
    // A message that does not decode (WireError.statsKey).
    case wrongFrameCount = "wrong_frame_count", oversized, malformed, outOfRange = "out_of_range"
    case unsupportedVersion = "unsupported_version"
    // Who the peer is.
    case unauthenticated, revoked, wrongIdentity = "wrong_identity"
    case handshakeNotEnrolled = "handshake_not_enrolled", handshakeRevoked = "handshake_revoked"
    // Out of turn.
    case batchesBeforeHello = "batches_before_hello", overCredit = "over_credit"
    case chunkRequestRefused = "chunk_request_refused", unexpectedKind = "unexpected_kind"
    // Batches a site may not upload, and what the hub could not do.
    case notOwnOrigin = "not_own_origin", homeContested = "home_contested"
    case unknownChunk = "unknown_chunk", chunkUnavailable = "chunk_unavailable"
    case chunkFailedVerification = "chunk_failed_verification"
    case sendWouldBlock = "send_would_block", diskFull = "disk_full"
    /// A hub on a shared database that cannot reach it (docs/multi-hub.md): the upload was not stored.
    case databaseUnavailable = "database_unavailable"

    /// The reason for a message that failed to decode.
    public init(_ error: WireError) {
        switch error {
        case .frameCount: self = .wrongFrameCount
        case .envelopeTooLarge, .payloadTooLarge, .tooManyBatches, .tooManyItems: self = .oversized
        case .unsupportedMajor: self = .unsupportedVersion
        case .outOfRange: self = .outOfRange
        case .malformedEnvelope, .unknownKind, .malformedPayload, .invalidField: self = .malformed
        }
    }
}

/// The hub's side of one site's connection (one ROUTER routing id), as a pure state machine: it
/// decides, ``HubServer`` carries out. Everything a site may and may not do is here, tested
/// without sockets (HubSessionTests): HELLO first and with the enrolled identity, uploads within
/// the credit, chunk requests only after HELLO and only when releases are on, revocation at once.
public struct HubSession: Sendable {
    /// The enrolled site behind the connection, as the ZAP handler authenticated it.
    public struct Peer: Equatable, Sendable {
        public let commune: Int
        public let identityKey: Data
        public let isRevoked: Bool
        public init(commune: Int, identityKey: Data, isRevoked: Bool) {
            self.commune = commune
            self.identityKey = identityKey
            self.isRevoked = isRevoked
        }
    }

    public enum State: Equatable, Sendable {
        /// Connected, no HELLO yet: only HELLO is accepted.
        case awaitingHello
        /// HELLO accepted from `origin` (the enrolled identity).
        case ready(origin: Origin)
        /// Revoked (or refused for good): every later message is refused.
        case closed
    }

    public enum Action: Equatable, Sendable {
        /// Send this message to the site.
        case send(WireMessage, id: UInt64)
        /// Answer HELLO: the I/O layer reads what the hub holds of `origin` and sends WELCOME with `id`.
        case welcome(origin: Origin, id: UInt64)
        /// Offer the current release if the site's (`siteVersion`) is older.
        case offerRelease(siteVersion: UInt64)
        /// Send the home feed after the session's cursor.
        case sendHomeFeed
        /// Queue these batches for this round's merge transaction; ACK `id` after commit.
        case merge(id: UInt64, batches: [Batch])
        /// Serve these chunks (within the transfer limit) — a transfer slot.
        case serveChunks([String])
        /// The same, whole: never as deltas (the site could not apply one).
        case serveWholeChunks([String])
        /// Count and log a refusal (per site and reason).
        case drop(DropReason, detail: String)
    }

    public let peer: Peer
    public private(set) var state: State = .awaitingHello
    /// The last home-feed entry sent (nil: this site does not take the feed).
    public var homeFeedCursor: UInt64?
    /// The site's installed manifest (BLAKE2b-256), from its HELLO, when it takes release deltas.
    public private(set) var installedManifestHash: Data?
    /// BATCHES messages taken this round and not yet acknowledged (the merge ACKs them).
    public private(set) var uploadsThisRound = 0

    public init(peer: Peer) { self.peer = peer }

    public var isReady: Bool { if case .ready = state { true } else { false } }

    static let revokedRefusal = WireMessage.refuse(code: .revoked, reason: "this site's enrollment was revoked", retryAfterSeconds: 0)

    /// A message from this site. `decoded` is the codec's result; `credit` the BATCHES messages a
    /// site may have unacknowledged; `releasesEnabled` whether this hub serves releases.
    public mutating func received(
        _ decoded: Result<(id: UInt64, message: WireMessage), WireError>, credit: UInt32, releasesEnabled: Bool
    ) -> [Action] {
        if peer.isRevoked || state == .closed {
            state = .closed
            return [.drop(.revoked, detail: "message from a revoked site"), .send(Self.revokedRefusal, id: 0)]
        }
        let id: UInt64, message: WireMessage
        switch decoded {
        case .failure(let error):
            var actions: [Action] = [.drop(DropReason(error), detail: "\(error)")]
            if let refusal = error.refusal { actions.append(.send(refusal, id: 0)) }
            return actions
        case .success(let d):
            (id, message) = d
        }
        switch message {
        case .hello(let hello):
            guard hello.origin.node.bytes == peer.identityKey else {
                return [
                    .send(.refuse(code: .wrongIdentity, reason: "HELLO names an identity key not enrolled for this transport key", retryAfterSeconds: 0), id: id),
                    .drop(.wrongIdentity, detail: "HELLO names another identity key"),
                ]
            }
            state = .ready(origin: hello.origin)
            homeFeedCursor = hello.homeFeedCursor
            installedManifestHash = hello.installedManifestHash
            return [.welcome(origin: hello.origin, id: id), .offerRelease(siteVersion: hello.releaseVersion), .sendHomeFeed]
        case .batches(let batches):
            guard isReady else {
                return [
                    .send(.refuse(code: .protocolViolation, reason: "send HELLO first", retryAfterSeconds: 0), id: id),
                    .drop(.batchesBeforeHello, detail: "BATCHES before HELLO"),
                ]
            }
            // Credit is enforced: every upload of this round is still unacknowledged.
            guard uploadsThisRound < Int(credit) else {
                return [.drop(.overCredit, detail: "more BATCHES messages in flight than the credit of \(credit)")]
            }
            uploadsThisRound += 1
            return [.merge(id: id, batches: batches)]
        case .chunkRequest(let hashes), .wholeChunkRequest(let hashes):
            guard isReady, releasesEnabled else {
                return [.drop(.chunkRequestRefused, detail: "CHUNK_REQUEST before HELLO or with releases off")]
            }
            if case .wholeChunkRequest = message { return [.serveWholeChunks(hashes)] }
            return [.serveChunks(hashes)]
        default:
            return [.drop(.unexpectedKind, detail: "a message kind a site may not send")]
        }
    }

    /// This round's uploads were merged and acknowledged (or refused as a whole): credit is free again.
    public mutating func roundEnded() { uploadsThisRound = 0 }

    /// The site's enrollment was revoked while connected: tell it, once, and refuse the rest.
    public mutating func revoked() -> [Action] {
        guard state != .closed else { return [] }
        state = .closed
        return [.send(Self.revokedRefusal, id: 0), .drop(.revoked, detail: "enrollment revoked while connected")]
    }

}

extension HubSession.Peer {
    /// The batches of an upload this site may send (its own origin's), and a refusal for each other.
    /// Relays come later; until then a site that uploads another node's batches is refused per batch.
    public func ownBatches(_ batches: [Batch]) -> (accepted: [Batch], refused: [WireMessage.Ack.Refusal]) {
        var accepted = [Batch](), refused = [WireMessage.Ack.Refusal]()
        for b in batches {
            if b.origin.node.bytes == identityKey {
                accepted.append(b)
            } else {
                refused.append(.init(code: DropReason.notOwnOrigin.rawValue, reason: "batch \(b.origin)#\(b.firstSeq): origin is not the sending site"))
            }
        }
        return (accepted, refused)
    }
}
