public import Foundation

/// Who was refused what: the key of the hub's refusal counters. `commune` is nil when the peer
/// could not be tied to an enrolled site (an unknown transport key, an admin connection).
public struct RefusalKey: Hashable, Sendable, CustomStringConvertible {
    public var commune: Int?
    /// A stable code from docs/protocol.md, "Refusal codes" (`bad_signature`, `over_credit`, …).
    public var reason: String
    public init(commune: Int?, reason: String) {
        self.commune = commune
        self.reason = reason
    }
    public var description: String { "\(commune.map(String.init) ?? "-")/\(reason)" }
}

/// Decides which refusals reach the log: the first of each (peer, reason) at once, then at most
/// one line per `interval` carrying how many were suppressed meanwhile. Counters stay exact; the
/// log stays bounded however fast a hostile peer sends. Pure: the caller passes the time.
public struct LogRateLimiter: Sendable {
    public let interval: Int64
    /// Keys remembered at most; beyond it the oldest are forgotten (a flood of distinct unknown
    /// keys cannot grow memory without bound).
    public let capacity: Int
    private var seen: [RefusalKey: (loggedAt: Int64, suppressed: Int)] = [:]

    public init(interval: Int64 = 60_000, capacity: Int = 20_000) {
        self.interval = interval
        self.capacity = capacity
    }

    /// - Returns: nil to stay silent, or the number of like refusals suppressed since the last line.
    public mutating func admit(_ key: RefusalKey, now: Int64) -> Int? {
        if var entry = seen[key] {
            if now - entry.loggedAt < interval {
                entry.suppressed += 1
                seen[key] = entry
                return nil
            }
            seen[key] = (now, 0)
            return entry.suppressed
        }
        if seen.count >= capacity {
            let oldest = seen.min { $0.value.loggedAt < $1.value.loggedAt }!.key
            seen[oldest] = nil
        }
        seen[key] = (now, 0)
        return 0
    }
}
