public import Foundation

/// Fetching a set of chunks from one peer with credit-based flow control, as a pure state machine:
/// at most `window` requests outstanding, each received chunk verified against its name and size,
/// and a stalled request (link lost, peer restarted) handed out again after `timeout`.
///
/// Every retry backs off: a chunk that failed verification or timed out is not asked for again
/// before its own ``RetryBackoff`` delay (growing, jittered, capped), while the other chunks go on.
/// A chunk that fails verification ``badSourceThreshold`` times marks the peer bad for that chunk:
/// reported once (``Outcome/mismatch(_:failures:)`` with `failures == badSourceThreshold`) and
/// in ``sourceProblem``; the fetch keeps backing off up to the cap. A peer's TRY_LATER is clamped
/// into ``RetryBackoff/peerRetryAfterSeconds``.
///
/// The site uses it against the hub, and the hub against an admin publishing a release.
public struct ChunkFetch: Sendable {
    public enum Outcome: Equatable, Sendable {
        /// Verified: the caller writes it durably, then calls ``stored(_:)``.
        case verified
        /// Not a chunk we asked for (late duplicate or a confused peer): ignored.
        case unexpected
        /// Bytes do not match the name or size: dropped, and asked for again after a backoff.
        /// `failures` counts this chunk's failed verifications in this fetch: log at 1 and at
        /// ``ChunkFetch/badSourceThreshold`` (the peer is then bad for it), count the rest.
        case mismatch(ReleaseRefusal, failures: Int)
    }

    /// Failed verifications of one chunk after which its source counts as bad for it.
    public static let badSourceThreshold = 3

    public let window: Int
    public let timeout: Int64
    public let backoff: RetryBackoff.Policy
    /// Who the chunks come from, in messages ("the hub", "the admin").
    public let source: String
    private(set) var pending: [Manifest.ChunkRef]
    private var outstanding: [String: (ref: Manifest.ChunkRef, since: Int64)] = [:]
    private var sizes: [String: Int]
    /// Chunks that failed (verification or timeout) and their backoff; removed once stored.
    private var retries: [String: RetryBackoff] = [:]
    private var verificationFailures: [String: Int] = [:]
    private var random: SplitMix64
    public private(set) var storedCount = 0
    public private(set) var storedBytes = 0
    public private(set) var mismatches = 0
    public private(set) var timeouts = 0
    /// The peer asked us to come back later (milliseconds); nothing is requested before then.
    public private(set) var notBefore: Int64 = 0

    /// - Parameters:
    ///   - missing: the chunks not yet held, in the order to fetch them.
    ///   - backoff: the retry policy; by default scaled to `timeout`.
    ///   - seed: the jitter's random source (fixed in tests).
    public init(
        missing: [Manifest.ChunkRef], window: Int = 8, timeout: Int64 = 30_000, backoff: RetryBackoff.Policy? = nil,
        source: String = "the peer", seed: UInt64 = .random(in: .min ... .max)
    ) {
        self.pending = missing
        self.window = max(1, window)
        self.timeout = timeout
        self.backoff = backoff ?? .chunkRetries(timeout: timeout)
        self.source = source
        self.random = SplitMix64(seed: seed)
        self.sizes = Dictionary(missing.map { ($0.hash, $0.size) }, uniquingKeysWith: { a, _ in a })
    }

    /// The size the manifest gives a chunk being fetched (0 if unknown).
    public func size(of hash: String) -> Int { sizes[hash] ?? 0 }

    public var isComplete: Bool { pending.isEmpty && outstanding.isEmpty }
    public var remaining: Int { pending.count + outstanding.count }
    public var outstandingCount: Int { outstanding.count }

    /// Chunks whose source failed their verification ``badSourceThreshold`` times or more (name →
    /// failures), still asked for after a capped backoff.
    public var badChunks: [String: Int] { verificationFailures.filter { $0.value >= Self.badSourceThreshold } }

    /// The first bad chunk, for status ("chunk … failed verification 3 times from the hub").
    public var sourceProblem: ReleaseRefusal? {
        guard let (hash, n) = badChunks.min(by: { $0.key < $1.key }) else { return nil }
        return .chunkFailedVerification(hash: hash, times: n, source: source)
    }

    /// When chunk `hash` may be asked for again (0: at once, or not backing off).
    public func retryAt(_ hash: String) -> Int64 { retries[hash]?.retryAt ?? 0 }

    /// Chunks to ask for now (possibly none), given how many bytes the caller may still request.
    public mutating func nextRequests(now: Int64, byteBudget: Int = .max) -> [String] {
        guard now >= notBefore else { return [] }
        for (hash, o) in outstanding where now - o.since >= timeout {
            outstanding[hash] = nil
            pending.insert(o.ref, at: 0)
            timeouts += 1
            retries[hash, default: RetryBackoff(policy: backoff)].failed(now: now, using: &random)
        }
        var out = [String]()
        guard outstanding.count < window, byteBudget > 0, !pending.isEmpty else { return out }
        var budget = byteBudget
        var kept = [Manifest.ChunkRef]()
        kept.reserveCapacity(pending.count)
        for next in pending {
            if outstanding.count < window, budget > 0, retries[next.hash]?.isReady(now: now) ?? true {
                outstanding[next.hash] = (next, now)
                out.append(next.hash)
                budget -= next.size
            } else {
                kept.append(next)
            }
        }
        pending = kept
        return out
    }

    public mutating func received(hash: String, bytes: Data, now: Int64) -> Outcome {
        guard let o = outstanding[hash] else { return .unexpected }
        let actual = Chunker.name(bytes)
        guard actual == hash, bytes.count == o.ref.size else {
            outstanding[hash] = nil
            pending.append(o.ref)
            mismatches += 1
            verificationFailures[hash, default: 0] += 1
            retries[hash, default: RetryBackoff(policy: backoff)].failed(now: now, using: &random)
            let refusal: ReleaseRefusal =
                actual == hash
                ? .chunkSizeMismatch(hash: hash, expected: o.ref.size, actual: bytes.count)
                : .chunkHashMismatch(expected: hash, actual: actual)
            return .mismatch(refusal, failures: verificationFailures[hash]!)
        }
        return .verified
    }

    /// The chunk is on disk (fsynced and renamed).
    public mutating func stored(_ hash: String) {
        guard outstanding.removeValue(forKey: hash) != nil else { return }
        retries[hash] = nil
        verificationFailures[hash] = nil
        storedCount += 1
        storedBytes += sizes[hash] ?? 0
    }

    /// The link dropped: whatever was asked for is asked for again on the next connection (a lost
    /// link is not the chunk's failure: no backoff is added).
    public mutating func connectionLost() {
        pending.insert(contentsOf: outstanding.values.map(\.ref).sorted { $0.hash < $1.hash }, at: 0)
        outstanding = [:]
        notBefore = 0
    }

    /// The peer is busy: come back after `seconds` (clamped into 1…3600); requests it had not
    /// answered are re-queued.
    public mutating func tryLater(now: Int64, seconds: UInt32) {
        connectionLost()
        notBefore = now + Int64(RetryBackoff.clampPeerRetryAfter(seconds)) * 1_000
    }

    /// The peer announced the release again (it re-fetched or repaired it): chunks waiting out a
    /// backoff are asked for at the next call; their failure counts are kept, so a peer that is
    /// still wrong is backed off from further.
    public mutating func retryNow() {
        for hash in retries.keys { retries[hash]!.retryNow() }
    }

    /// Adds a chunk to fetch (one believed held turned out damaged); no-op if already wanted.
    public mutating func add(_ ref: Manifest.ChunkRef) {
        guard outstanding[ref.hash] == nil, !pending.contains(where: { $0.hash == ref.hash }) else { return }
        pending.append(ref)
        sizes[ref.hash] = ref.size
    }
}
