/// Why a whole batch was refused (not stored, not acknowledged as applied).
public enum BatchRefusal: Equatable, Sendable, CustomStringConvertible {
    case badSignature
    /// Same `(origin, seq)` already held under a different batch id: the origin equivocated.
    case equivocation
    case originQuarantined(String)
    /// A batch of our own origin that we never wrote: this database was restored without
    /// rotating its epoch.
    case unknownOwnBatch
    case malformedRange
    /// The batch's `previous_id` is not the id of the origin's batch before it: the origin
    /// rewrote its history. Treated like equivocation (docs/crdt-rules.md).
    case chainBroken
    /// The batch does not extend the origin's contiguous run (a gap below it): not stored;
    /// the sender resends from the `have` it is told.
    case outOfOrder(expectedFirstSeq: UInt64)

    public var description: String {
        switch self {
        case .badSignature: "signature does not verify against the origin's identity key"
        case .equivocation: "origin sent two different batches for the same sequence numbers (equivocation)"
        case .originQuarantined(let why): "origin is quarantined: \(why)"
        case .unknownOwnBatch:
            "batch claims this node's own origin but was never written here: this database was restored from a backup "
                + "without starting a new epoch. At a site, stop hocvu-site and run `hocvu site restored` "
                + "(docs/operations.md, \"Backup and restore\"); a site also starts one by itself at its next contact with the hub"
        case .malformedRange: "batch sequence range is empty, out of range or does not match its change count"
        case .chainBroken: "batch does not chain to the origin's previous batch (history rewritten)"
        case .outOfOrder(let next): "batch does not start at the next sequence number (\(next)); resend from there"
        }
    }

    /// The stable code sent in ACK refusals and used for counters (docs/protocol.md, "Refusal codes").
    public var code: String {
        switch self {
        case .badSignature: "bad_signature"
        case .equivocation: "equivocation"
        case .originQuarantined: "origin_quarantined"
        case .unknownOwnBatch: "unknown_own_batch"
        case .malformedRange: "malformed_range"
        case .chainBroken: "chain_broken"
        case .outOfOrder: "out_of_order"
        }
    }
}
