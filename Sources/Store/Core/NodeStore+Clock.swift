import GRDB
import Merge
import Synchronization

/// The node's clock: the system clock, the offset adopted from the hub, and the rule for adopting one.
extension NodeStore {
    /// This machine's clock as the store reads it, before any offset: what the hub's offset is
    /// measured against.
    public func systemTime() -> Int64 { systemClock() }

    /// The clock offset in use (milliseconds; hub minus system clock).
    public var clockOffset: Int64 { offset.load(ordering: .relaxed) }

    /// Runs on the hub's time from now on: `milliseconds` = hub clock − this machine's clock, as
    /// measured at WELCOME. Persisted, so another process (an import) and a restart use it too.
    /// The hybrid logical clock never goes back, so adopting a smaller offset only slows it.
    public func adoptClockOffset(_ milliseconds: Int64) throws {
        guard Self.isAdoptableOffset(milliseconds, systemNow: systemClock()) else {
            throw StoreError.clock("a clock offset of \(milliseconds) ms is over the 24 h bound; not adopted")
        }
        try pool.write { db in try db.execute(sql: "UPDATE node SET clock_offset_ms = ?", arguments: [milliseconds]) }
        offset.store(milliseconds, ordering: .relaxed)
    }

    /// The offset rule (docs/operations.md, "Clocks"): a site runs on the hub's time when they
    /// differ by at most 24 h; beyond that only when this machine's own clock is certainly wrong
    /// (before the programme started), since the hub is then the only time there is.
    public static func isAdoptableOffset(_ offset: Int64, systemNow: Int64) -> Bool {
        guard offset != Int64.min else { return false }
        if abs(offset) <= ProtocolLimits.maxAdoptedClockOffsetMilliseconds { return true }
        guard systemNow < ProtocolLimits.programmeStartMilliseconds else { return false }
        let (adjusted, overflow) = systemNow.addingReportingOverflow(offset)
        return !overflow && ProtocolLimits.isValidClock(adjusted)
    }
}
