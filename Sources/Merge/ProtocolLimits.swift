/// Bounds on every integer a peer can send, checked when a message is decoded and before any
/// arithmetic, so a value from the wire can never reach a trap (docs/protocol.md, "Limits").
///
/// An enrolled peer is not trusted: a stolen or buggy commune PC, or a misconfigured hub, may
/// send any bit pattern an authenticated message can carry.
public enum ProtocolLimits {
    /// Largest sequence number, version-vector entry, home-feed cursor or release version:
    /// 2^53 − 1, exact in every JSON and JavaScript number, and far below `Int64.max`, so
    /// `seq + count` on accepted values cannot overflow in Swift or SQLite.
    public static let maxSequence: UInt64 = (1 << 53) - 1

    /// 2025-01-01T00:00:00Z in Unix milliseconds. The programme started in September 2025; no
    /// result, clock reading or certificate can be older than this floor.
    public static let programmeStartMilliseconds: Int64 = 1_735_689_600_000

    /// The hybrid logical clock keeps 48 bits of milliseconds (year 10889): a reading above this
    /// cannot be represented and is malformed.
    public static let maxClockMilliseconds: Int64 = (1 << 48) - 1

    /// A site runs on the hub's clock when its own is off, but only within this bound (24 h):
    /// a hub (or a man in the middle of a misconfigured one) cannot move a site years ahead.
    public static let maxAdoptedClockOffsetMilliseconds: Int64 = 24 * 3_600 * 1_000

    /// Unacknowledged BATCHES messages a hub may grant: a granted credit is clamped into
    /// `1...maxCredit`.
    public static let maxCredit: UInt32 = 64

    /// A peer's "come back after" is clamped into `1...maxRetryAfterSeconds` (one hour).
    public static let maxRetryAfterSeconds: UInt32 = 3_600

    /// True when `seq` is a sequence number a peer may send (0 means "none" where allowed).
    public static func isValidSequence(_ seq: UInt64) -> Bool { seq <= maxSequence }

    /// True when `ms` is a plausible clock reading (Unix milliseconds).
    public static func isValidClock(_ ms: Int64) -> Bool {
        (programmeStartMilliseconds...maxClockMilliseconds).contains(ms)
    }

    /// A granted credit, clamped.
    public static func clampedCredit(_ credit: UInt32) -> UInt32 { min(max(credit, 1), maxCredit) }

    /// A peer's retry delay, clamped.
    public static func clampedRetryAfter(_ seconds: UInt32) -> UInt32 { min(max(seconds, 1), maxRetryAfterSeconds) }

    /// True when a batch's claimed range is acceptable: `1 ≤ first ≤ last ≤ maxSequence` and at
    /// most `maxChanges` changes. Checked before `last − first` is ever computed on peer input.
    public static func isValidBatchRange(first: UInt64, last: UInt64, maxChanges: Int) -> Bool {
        first >= 1 && first <= last && last <= maxSequence && last - first < UInt64(maxChanges)
    }
}
