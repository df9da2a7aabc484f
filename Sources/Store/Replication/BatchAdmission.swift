public import Foundation
public import Model

/// Whether a signed batch may join its origin's history: the one rule, as a pure decision, that a
/// hub's SQLite store (``NodeStore/apply(_:heardFrom:routeHome:)``) and the shared PostgreSQL log of
/// several hub processes (module HubPostgres) both carry out. Checked in this order: the range and
/// the signature (before any arithmetic on the peer's numbers), the origin's quarantine, an overlap
/// with a stored batch (the same one again, or equivocation), our own origin, the contiguous run,
/// the hash chain.
public enum BatchAdmission: Equatable, Sendable {
    /// Store it and merge it; the origin's head moves to its last sequence number and id.
    case accept
    /// The same batch is already held: nothing to do, and nothing refused.
    case duplicate
    case refuse(BatchRefusal)
    /// The origin equivocated or rewrote its chain: quarantine it (with this reason), refuse the batch.
    case quarantineOrigin(String, BatchRefusal)

    /// What is known of an origin when one of its batches arrives.
    public struct Head: Sendable, Equatable {
        public var contiguous: UInt64
        public var lastBatchID: Data
        public var quarantine: String?
        public init(contiguous: UInt64 = 0, lastBatchID: Data = Batch.zeroID, quarantine: String? = nil) {
            self.contiguous = contiguous
            self.lastBatchID = lastBatchID
            self.quarantine = quarantine
        }
    }

    /// The nearest stored batch of the origin starting at or below the new batch's last sequence number.
    public struct Stored: Sendable, Equatable {
        public var firstSeq: UInt64
        public var lastSeq: UInt64
        public var id: Data
        public init(firstSeq: UInt64, lastSeq: UInt64, id: Data) {
            self.firstSeq = firstSeq
            self.lastSeq = lastSeq
            self.id = id
        }
    }

    /// - Parameters:
    ///   - id: the batch's id (BLAKE2b of its header), computed by the caller once.
    ///   - head: reads (or creates) the origin's head; asked only once range and signature passed.
    ///   - nearest: looks up the stored batch that could overlap (asked only when needed).
    ///   - isOwnOrigin: the batch claims the deciding node's own origin.
    public static func decide(
        _ batch: Batch, id: Data, signatureValid: Bool, countMismatch: Bool, isOwnOrigin: Bool,
        head readHead: () throws -> Head, nearest: () throws -> Stored?
    ) rethrows -> BatchAdmission {
        guard batch.hasValidRange, !countMismatch else { return .refuse(.malformedRange) }
        guard signatureValid else { return .refuse(.badSignature) }
        // Read only now: a batch refused above never creates or locks an origin's row.
        let head = try readHead()
        if let why = head.quarantine { return .refuse(.originQuarantined(why)) }
        // Stored batches of one origin never overlap, so only the nearest one below `lastSeq` can.
        if let s = try nearest(), s.lastSeq >= batch.firstSeq {
            if s.firstSeq == batch.firstSeq, s.lastSeq == batch.lastSeq, s.id == id { return .duplicate }
            if isOwnOrigin { return .refuse(.unknownOwnBatch) }
            return .quarantineOrigin("equivocation at seq \(batch.firstSeq)-\(batch.lastSeq)", .equivocation)
        }
        if isOwnOrigin { return .refuse(.unknownOwnBatch) }
        // Only a batch that extends the contiguous run is stored and merged, and only if it chains
        // to the batch before it. A gap is refused (resent in order later), so a broken chain is
        // always seen before anything of it is merged.
        guard batch.firstSeq == head.contiguous + 1 else {
            return .refuse(.outOfOrder(expectedFirstSeq: head.contiguous + 1))
        }
        guard batch.previousID == head.lastBatchID else {
            return .quarantineOrigin("hash chain broken at seq \(batch.firstSeq)", .chainBroken)
        }
        return .accept
    }
}
