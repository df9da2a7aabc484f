public import Foundation

/// Fetching a set of chunks from one peer with credit-based flow control, as a pure state machine:
/// at most `window` requests outstanding, each received chunk verified against its name, and a
/// stalled request (link lost, peer restarted) handed out again after `timeout`.
///
/// The site uses it against the hub, and the hub against an admin publishing a release.
public struct ChunkFetch: Sendable {
    public enum Outcome: Equatable, Sendable {
        /// Verified: the caller writes it durably, then calls ``stored(_:)``.
        case verified
        /// Not a chunk we asked for (late duplicate or a confused peer): ignored.
        case unexpected
        /// Bytes do not match the name: dropped, and asked for again.
        case mismatch(ReleaseRefusal)
    }

    public let window: Int
    public let timeout: Int64
    private(set) var pending: [Manifest.ChunkRef]
    private var outstanding: [String: (ref: Manifest.ChunkRef, since: Int64)] = [:]
    private var sizes: [String: Int]
    public private(set) var storedCount = 0
    public private(set) var storedBytes = 0
    public private(set) var mismatches = 0
    /// The peer asked us to come back later (milliseconds); nothing is requested before then.
    public private(set) var notBefore: Int64 = 0

    /// - Parameter missing: the chunks not yet held, in the order to fetch them.
    public init(missing: [Manifest.ChunkRef], window: Int = 8, timeout: Int64 = 30_000) {
        self.pending = missing
        self.window = max(1, window)
        self.timeout = timeout
        self.sizes = Dictionary(missing.map { ($0.hash, $0.size) }, uniquingKeysWith: { a, _ in a })
    }

    /// The size the manifest gives a chunk being fetched (0 if unknown).
    public func size(of hash: String) -> Int { sizes[hash] ?? 0 }

    public var isComplete: Bool { pending.isEmpty && outstanding.isEmpty }
    public var remaining: Int { pending.count + outstanding.count }
    public var outstandingCount: Int { outstanding.count }

    /// Chunks to ask for now (possibly none), given how many bytes the caller may still request.
    public mutating func nextRequests(now: Int64, byteBudget: Int = .max) -> [String] {
        guard now >= notBefore else { return [] }
        for (hash, o) in outstanding where now - o.since >= timeout {
            outstanding[hash] = nil
            pending.insert(o.ref, at: 0)
        }
        var out = [String]()
        var budget = byteBudget
        while outstanding.count < window, let next = pending.first, budget > 0 {
            pending.removeFirst()
            outstanding[next.hash] = (next, now)
            out.append(next.hash)
            budget -= next.size
        }
        return out
    }

    public mutating func received(hash: String, bytes: Data) -> Outcome {
        guard let o = outstanding[hash] else { return .unexpected }
        let actual = Chunker.name(bytes)
        guard actual == hash, bytes.count == o.ref.size else {
            outstanding[hash] = nil
            pending.append(o.ref)
            mismatches += 1
            return .mismatch(.chunkHashMismatch(expected: hash, actual: actual))
        }
        return .verified
    }

    /// The chunk is on disk (fsynced and renamed).
    public mutating func stored(_ hash: String) {
        guard outstanding.removeValue(forKey: hash) != nil else { return }
        storedCount += 1
        storedBytes += sizes[hash] ?? 0
    }

    /// The link dropped: whatever was asked for is asked for again on the next connection.
    public mutating func connectionLost() {
        pending.insert(contentsOf: outstanding.values.map(\.ref).sorted { $0.hash < $1.hash }, at: 0)
        outstanding = [:]
        notBefore = 0
    }

    /// The peer is busy: come back after `seconds`; requests it had not answered are re-queued.
    public mutating func tryLater(now: Int64, seconds: UInt32) {
        connectionLost()
        notBefore = now + Int64(seconds) * 1_000
    }
}
