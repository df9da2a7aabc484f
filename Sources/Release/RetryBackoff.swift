/// When to try again after a failure (a chunk that failed verification, a request that timed
/// out): exponential backoff with jitter and a cap, as a pure value. Time is the caller's
/// (milliseconds, passed in) and so is the random source, so it is tested without sockets or sleeps.
///
/// After the k-th consecutive failure the delay is drawn uniformly from `[c/2, c]` where
/// `c = min(cap, base · 2^k)` ("equal jitter"). Full jitter (`[0, c]`) could retry at once, which
/// is the loop this type exists to stop; here the floor doubles with every failure until the cap,
/// and the spread of half the ceiling keeps 3,321 sites from retrying in step.
public struct RetryBackoff: Sendable, Equatable {
    public struct Policy: Sendable, Equatable {
        /// Ceiling of the first delay (milliseconds); the first delay is between half of it and it.
        public var base: Int64
        /// No delay is ever longer than this (milliseconds).
        public var cap: Int64

        public init(base: Int64, cap: Int64) {
            self.base = max(2, base)
            self.cap = max(self.base, cap)
        }

        /// Chunk retries scaled to a fetch's timeout: a timeout of 30 s gives delays starting at
        /// 1–2 s and capped at 10 min (a chunk the peer keeps getting wrong is asked for about
        /// every 10 min, not every round trip).
        public static func chunkRetries(timeout: Int64) -> Policy {
            Policy(base: max(50, timeout / 15), cap: max(1_000, timeout * 20))
        }
    }

    /// What a peer may ask in a TRY_LATER: anything outside is clamped (a 0 would make a retry
    /// loop, a huge value would park a site for days).
    public static let peerRetryAfterSeconds: ClosedRange<UInt32> = 1...3_600

    public static func clampPeerRetryAfter(_ seconds: UInt32) -> UInt32 {
        min(max(seconds, peerRetryAfterSeconds.lowerBound), peerRetryAfterSeconds.upperBound)
    }

    public let policy: Policy
    /// Consecutive failures since the last ``reset()``.
    public private(set) var failures = 0
    /// Nothing is tried before this (milliseconds, the caller's clock); 0 = at once.
    public private(set) var retryAt: Int64 = 0

    public init(policy: Policy) { self.policy = policy }

    /// The ceiling for the delay after `failures` earlier failures: `min(cap, base · 2^failures)`.
    public static func ceiling(after failures: Int, policy: Policy) -> Int64 {
        var c = policy.base
        var n = 0
        while n < failures, c < policy.cap {
            c = min(policy.cap, c * 2)
            n += 1
        }
        return c
    }

    public func isReady(now: Int64) -> Bool { now >= retryAt }

    /// Records a failure at `now`; returns the delay chosen (milliseconds).
    @discardableResult
    public mutating func failed(now: Int64, using random: inout some RandomNumberGenerator) -> Int64 {
        let c = Self.ceiling(after: failures, policy: policy)
        let delay = Int64.random(in: (c / 2)...c, using: &random)
        failures += 1
        retryAt = now + delay
        return delay
    }

    /// Success: the next failure starts again from `base`.
    public mutating func reset() {
        failures = 0
        retryAt = 0
    }

    /// The peer says things changed (it re-announced the release): try at once, but a further
    /// failure keeps growing the delay from where it was.
    public mutating func retryNow() { retryAt = 0 }
}

/// A small seeded random source (SplitMix64): deterministic from its seed, so state machines that
/// hold one stay pure values and tests can fix the sequence.
public struct SplitMix64: RandomNumberGenerator, Sendable, Equatable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Rate limiting for logs on retry paths: a line per key (chunk and failure class) the first time
/// only, with everything after counted. Bounded: beyond `limit` distinct keys, nothing more is
/// logged, only counted.
public struct LogOnce: Sendable {
    private var seen: Set<String> = []
    public let limit: Int
    /// Occurrences not logged (repeats, or keys beyond the limit).
    public private(set) var suppressed = 0

    public init(limit: Int = 4_096) { self.limit = limit }

    /// True the first time `key` is seen (log it); false afterwards (count it).
    public mutating func first(_ key: String) -> Bool {
        if seen.contains(key) || seen.count >= limit {
            suppressed += 1
            return false
        }
        seen.insert(key)
        return true
    }

    /// Forget `key` (the problem went away: a new occurrence is news again).
    public mutating func forget(_ key: String) { seen.remove(key) }
}
