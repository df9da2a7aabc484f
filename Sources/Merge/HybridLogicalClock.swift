/// A hybrid logical clock reading: 48-bit physical milliseconds and a 16-bit logical counter,
/// packed so that integer order is causal order.
public struct HLCTimestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public init(milliseconds: UInt64, counter: UInt16) {
        self.rawValue = (milliseconds & 0xFFFF_FFFF_FFFF) << 16 | UInt64(counter)
    }

    public static let zero = HLCTimestamp(rawValue: 0)

    public var milliseconds: UInt64 { rawValue >> 16 }
    public var counter: UInt16 { UInt16(truncatingIfNeeded: rawValue) }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { "\(milliseconds).\(counter)" }
}

/// Why a clock refused a reading.
public enum ClockError: Error, Equatable, CustomStringConvertible {
    /// A remote stamp is further ahead of our physical clock than the allowed drift.
    case remoteTooFarAhead(remoteMilliseconds: UInt64, localMilliseconds: UInt64, maxDrift: UInt64)
    /// 65,535 events in one millisecond with no physical progress: refuse rather than wrap.
    case counterExhausted

    public var description: String {
        switch self {
        case .remoteTooFarAhead(let remote, let local, let maxDrift):
            "remote clock is \((remote - local) / 1000) s ahead of ours (limit \(maxDrift / 1000) s); "
                + "check the time on the sending node (timedatectl) — the record is set aside, not merged"
        case .counterExhausted:
            "hybrid logical clock counter exhausted within one millisecond"
        }
    }
}

/// The hybrid logical clock (Kulkarni et al.) as a pure state machine.
///
/// The caller supplies physical time, persists ``last`` with each write, and restores it on start,
/// so a reboot never goes back. Remote stamps more than ``maxDrift`` ahead of physical time are
/// refused (CockroachDB's max-offset rule): one node with a wild clock cannot drag everyone forward.
public struct HybridLogicalClock: Sendable {
    /// The default bound on how far ahead a remote stamp may be: five minutes.
    public static let defaultMaxDrift: UInt64 = 5 * 60 * 1000

    public private(set) var last: HLCTimestamp
    public let maxDrift: UInt64

    public init(last: HLCTimestamp = .zero, maxDrift: UInt64 = Self.defaultMaxDrift) {
        self.last = last
        self.maxDrift = maxDrift
    }

    /// A new stamp for a local event at physical time `now` (ms since the Unix epoch).
    public mutating func tick(now: UInt64) throws(ClockError) -> HLCTimestamp {
        let next: HLCTimestamp
        if now > last.milliseconds {
            next = HLCTimestamp(milliseconds: now, counter: 0)
        } else {
            guard last.counter < UInt16.max else { throw .counterExhausted }
            next = HLCTimestamp(milliseconds: last.milliseconds, counter: last.counter + 1)
        }
        last = next
        return next
    }

    /// Checks a remote stamp against the drift bound without changing the clock.
    public func check(remote: HLCTimestamp, now: UInt64) throws(ClockError) {
        if remote.milliseconds > now &+ maxDrift {
            throw .remoteTooFarAhead(remoteMilliseconds: remote.milliseconds, localMilliseconds: now, maxDrift: maxDrift)
        }
    }

    /// Folds a remote stamp into the clock so later local stamps sort after it.
    public mutating func observe(remote: HLCTimestamp, now: UInt64) throws(ClockError) {
        try check(remote: remote, now: now)
        let physical = max(now, last.milliseconds, remote.milliseconds)
        var counter: UInt16 = 0
        if physical == last.milliseconds && physical == remote.milliseconds {
            counter = max(last.counter, remote.counter)
        } else if physical == last.milliseconds {
            counter = last.counter
        } else if physical == remote.milliseconds {
            counter = remote.counter
        } else {
            last = HLCTimestamp(milliseconds: physical, counter: 0)
            return
        }
        guard counter < UInt16.max else { throw .counterExhausted }
        last = HLCTimestamp(milliseconds: physical, counter: counter + 1)
    }
}
