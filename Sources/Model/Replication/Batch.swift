public import Foundation
public import Merge
public import Sodium

/// A signed run of one origin's changes, `firstSeq...lastSeq`: the unit of replication.
///
/// Batches are stored as received and forwarded unchanged, so a hub or relay can neither forge
/// nor alter a site's results. The origin signs a domain-separated header naming the origin,
/// the sequence range, the previous batch's id (a hash chain) and the hash of the body.
public struct Batch: Hashable, Sendable {
    public static let domain = Array("hocvu/batch/v1\u{0}".utf8)

    public let origin: Origin
    public let firstSeq: UInt64
    public let lastSeq: UInt64
    /// Id of this origin's previous batch; 32 zero bytes for its first.
    public let previousID: Data
    /// ``ChangeCodec`` bytes.
    public let body: Data
    /// Ed25519 signature by `origin.node` over ``header``.
    public let signature: Data

    public init(origin: Origin, firstSeq: UInt64, lastSeq: UInt64, previousID: Data, body: Data, signature: Data) {
        self.origin = origin
        self.firstSeq = firstSeq
        self.lastSeq = lastSeq
        self.previousID = previousID
        self.body = body
        self.signature = signature
    }

    /// Builds and signs a batch of `changes` starting at `firstSeq`.
    public static func seal(
        changes: [Change], origin: Origin, firstSeq: UInt64, previousID: Data, signer: SigningKeyPair
    ) -> Batch {
        precondition(!changes.isEmpty && signer.publicKey == origin.node.bytes)
        let body = Data(ChangeCodec.encode(changes))
        let last = firstSeq + UInt64(changes.count) - 1
        let header = header(origin: origin, firstSeq: firstSeq, lastSeq: last, previousID: previousID, body: body)
        return Batch(
            origin: origin, firstSeq: firstSeq, lastSeq: last, previousID: previousID, body: body,
            signature: signer.sign(header))
    }

    /// The signed bytes.
    public var header: Data {
        Self.header(origin: origin, firstSeq: firstSeq, lastSeq: lastSeq, previousID: previousID, body: body)
    }

    package static func header(origin: Origin, firstSeq: UInt64, lastSeq: UInt64, previousID: Data, body: Data) -> Data {
        var w = ByteWriter(capacity: 160)
        w.raw(domain)
        w.raw(origin.node.bytes)
        w.fixed64(origin.epoch)
        w.fixed64(firstSeq)
        w.fixed64(lastSeq)
        w.raw(previousID)
        w.raw(Blake2b.hash(body))
        return Data(w.bytes)
    }

    /// The batch id: BLAKE2b of the signed bytes.
    public var id: Data { Blake2b.hash(header) }

    /// True when the signature is the origin's over this header.
    public var hasValidSignature: Bool {
        Ed25519.verify(signature: signature, message: header, publicKey: origin.node.bytes)
    }

    /// Changes the header claims; 0 for an impossible range. Never traps, whatever a peer sent.
    public var changeCount: Int {
        guard lastSeq >= firstSeq else { return 0 }
        let span = lastSeq - firstSeq
        return span >= UInt64(Int.max) ? Int.max : Int(span) + 1
    }

    /// True when the claimed range is one a peer may send (docs/protocol.md, "Limits").
    public var hasValidRange: Bool {
        ProtocolLimits.isValidBatchRange(first: firstSeq, last: lastSeq, maxChanges: ChangeCodec.maxChangesPerBatch)
    }

    public static let zeroID = Data(count: 32)
}
