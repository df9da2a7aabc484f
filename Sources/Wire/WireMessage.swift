public import Foundation
public import Merge
public import Model
public import Release
import SwiftProtobuf

/// Protocol version this build speaks. Majors differ ⇒ refuse; minors are additive.
public enum ProtocolVersion {
    public static let major: UInt32 = 1
    /// 1: curriculum releases (RELEASE_OFFER, CHUNK_REQUEST, CHUNK, TRY_LATER, PUBLISHED).
    /// 2: the home feed (HOME_FEED; HELLO's home-feed cursor).
    /// 3: roster entries (change kind 6) in the home feed.
    /// 4: release deltas (HELLO's installed manifest hash; ReleaseOffer's manifest delta; Chunk's
    ///    delta and bases; ChunkRequest's `whole`).
    public static let minor: UInt32 = 4
}

/// Limits on what a peer may send; anything over is dropped and counted.
public enum WireLimits {
    public static let maxEnvelopeBytes = 256
    /// A frame must fit `ZMQ_MAXMSGSIZE` on the receiving socket.
    public static let maxPayloadBytes = (1 << 20) + 1_024  // a 1 MiB chunk and its name
    public static let maxBatchesPerMessage = 256
    public static let maxChunksPerRequest = 64
    public static let maxSignatures = 64
    /// Chunks a chunk delta may copy from.
    public static let maxDeltaBases = 8
}

/// One protocol message, in Swift terms.
public enum WireMessage: Equatable, Sendable {
    public struct Hello: Equatable, Sendable {
        public var origin: Origin
        public var clockMilliseconds: Int64
        public var releaseVersion: UInt64
        public var knowledge: VersionVector
        /// The last home-feed entry the site holds, if it takes the feed (nil: it does not).
        public var homeFeedCursor: UInt64?
        /// BLAKE2b-256 of the installed manifest's signed bytes, when the site takes release deltas
        /// against it (nil: whole offers and chunks only).
        public var installedManifestHash: Data?
        public init(
            origin: Origin, clockMilliseconds: Int64, releaseVersion: UInt64, knowledge: VersionVector, homeFeedCursor: UInt64? = nil,
            installedManifestHash: Data? = nil
        ) {
            self.origin = origin; self.clockMilliseconds = clockMilliseconds
            self.releaseVersion = releaseVersion; self.knowledge = knowledge; self.homeFeedCursor = homeFeedCursor
            self.installedManifestHash = installedManifestHash
        }
    }

    public struct Welcome: Equatable, Sendable {
        public var clockMilliseconds: Int64
        public var have: VersionVector
        public var credit: UInt32
        public var releaseVersion: UInt64
        /// For each origin in `have`, the id of the hub's batch ending there (a site compares it with
        /// its own to detect a restored database). Absent from hubs before this field existed.
        public var haveBatchIDs: [Origin: Data] = [:]
        public init(clockMilliseconds: Int64, have: VersionVector, credit: UInt32, releaseVersion: UInt64) {
            self.clockMilliseconds = clockMilliseconds; self.have = have; self.credit = credit
            self.releaseVersion = releaseVersion
        }
    }

    public struct Ack: Equatable, Sendable {
        /// A batch the hub did not take: a stable code (docs/protocol.md, "Refusal codes") and words.
        public struct Refusal: Equatable, Sendable, CustomStringConvertible {
            public var code: String
            public var reason: String
            public init(code: String, reason: String) { self.code = code; self.reason = reason }
            public var description: String { "\(code): \(reason)" }
        }
        public var ackedMessageID: UInt64
        public var have: VersionVector
        public var credit: UInt32
        public var refused: [Refusal]
        public init(ackedMessageID: UInt64, have: VersionVector, credit: UInt32, refused: [Refusal] = []) {
            self.ackedMessageID = ackedMessageID; self.have = have; self.credit = credit; self.refused = refused
        }
    }

    public enum RefuseCode: Int, Sendable {
        case unsupportedVersion = 1, notEnrolled, revoked, wrongIdentity, malformed, busy, protocolViolation
        /// A release was refused; the connection stays up.
        case releaseRefused
    }

    case hello(Hello)
    case welcome(Welcome)
    case batches([Batch])
    case ack(Ack)
    case refuse(code: RefuseCode, reason: String, retryAfterSeconds: UInt32)
    /// A signed release manifest (hub → site to announce, admin → hub to publish).
    case releaseOffer(SignedRelease)
    /// Chunk names (BLAKE2b-256, hex) the sender wants.
    case chunkRequest([String])
    /// The same, but never as deltas (a delta of these could not be applied).
    case wholeChunkRequest([String])
    case chunk(hash: String, data: Data)
    /// Hub → site: a chunk as a ``Release/ByteDelta`` against `bases`, chunks of the site's
    /// installed release (names, hex). The site rebuilds it and verifies it as a whole chunk.
    case chunkDelta(hash: String, bases: [String], delta: Data)
    /// Hub → site: a signed release whose manifest bytes travel as a ``Release/ByteDelta`` against
    /// the installed manifest named by `baseManifestHash` (BLAKE2b-256 of its bytes).
    case releaseOfferDelta(baseManifestHash: Data, delta: Data, signatures: [ReleaseSignature])
    case tryLater(seconds: UInt32, reason: String)
    case published(version: UInt64)
    /// Hub → site: a signed slice of the site's home feed (see ``HomeFeedCodec``).
    case homeFeed(body: Data, signature: Data)
}

/// Why a message was dropped. Each is counted and logged with the peer's identity.
public enum WireError: Error, Equatable, CustomStringConvertible {
    case frameCount(Int)
    case envelopeTooLarge(Int)
    case payloadTooLarge(Int)
    case malformedEnvelope
    case unsupportedMajor(UInt32)
    case unknownKind(Int)
    case malformedPayload(String)
    case invalidField(String)
    case tooManyBatches(Int)
    case tooManyItems(String, Int)
    /// An integer outside its documented range (docs/protocol.md, "Limits").
    case outOfRange(String)

    public var description: String {
        switch self {
        case .frameCount(let n): "message has \(n) frames; exactly 2 ([envelope][payload]) are allowed"
        case .envelopeTooLarge(let n): "envelope is \(n) bytes (limit \(WireLimits.maxEnvelopeBytes))"
        case .payloadTooLarge(let n): "payload is \(n) bytes (limit \(WireLimits.maxPayloadBytes))"
        case .malformedEnvelope: "envelope is not a valid protobuf Envelope"
        case .unsupportedMajor(let m): "protocol major version \(m) is not supported (this node speaks \(ProtocolVersion.major))"
        case .unknownKind(let k): "unknown message kind \(k)"
        case .malformedPayload(let what): "payload is not a valid \(what)"
        case .invalidField(let f): "field \(f) has an invalid value"
        case .tooManyBatches(let n): "\(n) batches in one message (limit \(WireLimits.maxBatchesPerMessage))"
        case .tooManyItems(let what, let n): "\(n) \(what) in one message (over the limit)"
        case .outOfRange(let f): "field \(f) is outside its documented range"
        }
    }

    /// The refusal to send back, for errors the peer should hear about.
    public var refusal: WireMessage? {
        switch self {
        case .unsupportedMajor: .refuse(code: .unsupportedVersion, reason: description, retryAfterSeconds: 0)
        default: nil
        }
    }
}
