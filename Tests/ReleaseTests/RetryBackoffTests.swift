import Foundation
import Release
import TestSupport
import Testing

/// The retry policy of the release path, pure: growth, cap, jitter bounds, reset, on an injected
/// random source and clock.
@Suite struct RetryBackoffTests {
    let policy = RetryBackoff.Policy(base: 1_000, cap: 60_000)

    /// The delays of `failures` consecutive failures from one seed.
    func delays(_ failures: Int, seed: UInt64, policy: RetryBackoff.Policy? = nil) -> [Int64] {
        var b = RetryBackoff(policy: policy ?? self.policy)
        var random = SplitMix64(seed: seed)
        return (0..<failures).map { _ in b.failed(now: 0, using: &random) }
    }

    @Test func delaysDoubleWithinJitterBoundsUntilTheCap() {
        let ceilings: [Int64] = [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]
        for k in ceilings.indices { #expect(RetryBackoff.ceiling(after: k, policy: policy) == ceilings[k]) }
        var lows = [Int64](repeating: .max, count: ceilings.count), highs = [Int64](repeating: 0, count: ceilings.count)
        for seed in 0..<300 as Range<UInt64> {
            for (k, d) in delays(ceilings.count, seed: seed).enumerated() {
                #expect(d >= ceilings[k] / 2 && d <= ceilings[k], "delay \(k) = \(d) outside [\(ceilings[k] / 2), \(ceilings[k])]")
                lows[k] = min(lows[k], d)
                highs[k] = max(highs[k], d)
            }
        }
        // Growth whatever the draws: every delay is at least the largest possible one two failures earlier.
        for k in 2..<6 { #expect(lows[k] >= highs[k - 2] * 2) }
        // Jitter: the draws cover their range, so sites that failed together do not retry together.
        for k in ceilings.indices {
            #expect(lows[k] < ceilings[k] / 2 + ceilings[k] / 10 && highs[k] > ceilings[k] - ceilings[k] / 10)
        }
    }

    @Test func capHoldsAfterManyFailuresWithoutOverflow() {
        var b = RetryBackoff(policy: policy)
        var random = SplitMix64(seed: 7)
        for i in 0..<10_000 {
            let d = b.failed(now: 1 << 40, using: &random)
            #expect(d <= 60_000)
            if i >= 6 { #expect(d >= 30_000) }  // 1, 2, 4, 8, 16, 32 s ceilings, then the cap
        }
        #expect(b.failures == 10_000)
        #expect(RetryBackoff.ceiling(after: .max, policy: policy) == 60_000)
        // A policy is kept sane: a cap below the base is the base.
        #expect(RetryBackoff.Policy(base: 5_000, cap: 10).cap == 5_000)
        // Scaled to the default 30 s fetch timeout: 1–2 s first, never above 10 min.
        let chunks = RetryBackoff.Policy.chunkRetries(timeout: 30_000)
        #expect(chunks.base == 2_000 && chunks.cap == 600_000)
    }

    @Test func sameSeedSameDelaysOtherSeedOthers() {
        #expect(delays(8, seed: 42) == delays(8, seed: 42))
        #expect(delays(8, seed: 42) != delays(8, seed: 43))
    }

    @Test func resetStartsOverAndTheClockIsTheCallers() {
        var b = RetryBackoff(policy: policy)
        var random = SplitMix64(seed: 1)
        #expect(b.isReady(now: 0))
        let d = b.failed(now: 10_000, using: &random)
        #expect(b.retryAt == 10_000 + d)
        #expect(!b.isReady(now: 10_000 + d - 1) && b.isReady(now: 10_000 + d))
        for _ in 0..<5 { b.failed(now: 20_000, using: &random) }
        #expect(b.failures == 6)
        // Told to try now (the peer re-announced): ready at once, but the next failure keeps growing.
        b.retryNow()
        #expect(b.isReady(now: 0) && b.failures == 6)
        let grown = b.failed(now: 0, using: &random)
        #expect(grown >= 30_000)
        b.reset()
        #expect(b.failures == 0 && b.isReady(now: 0))
        let first = b.failed(now: 0, using: &random)
        #expect(first >= 500 && first <= 1_000)
    }

    @Test func aPeersRetryAfterIsClampedIntoOneSecondToOneHour() {
        #expect(RetryBackoff.clampPeerRetryAfter(0) == 1)
        #expect(RetryBackoff.clampPeerRetryAfter(20) == 20)
        #expect(RetryBackoff.clampPeerRetryAfter(3_600) == 3_600)
        #expect(RetryBackoff.clampPeerRetryAfter(.max) == 3_600)
        let ref = Manifest.ChunkRef(hash: Chunker.name(Data([1])), size: 1)
        var f = ChunkFetch(missing: [ref])
        f.tryLater(now: 5_000, seconds: 0)  // "retry after 0 s" must not become a loop
        var asked = f.nextRequests(now: 5_999)
        #expect(asked.isEmpty)
        asked = f.nextRequests(now: 6_000)
        #expect(asked == [ref.hash])
        f.tryLater(now: 10_000, seconds: .max)  // nor park the site for 136 years
        #expect(f.notBefore == 10_000 + 3_600_000)
        asked = f.nextRequests(now: 3_609_999)
        #expect(asked.isEmpty)
        asked = f.nextRequests(now: 3_610_000)
        #expect(asked == [ref.hash])
    }

    @Test func logOnceLogsTheFirstOfEachKeyAndCountsTheRest() {
        var l = LogOnce(limit: 3)
        let seen = [
            l.first("mismatch:a"), l.first("mismatch:a"), l.first("mismatch:a"), l.first("bad-source:a"), l.first("mismatch:b"),
            l.first("mismatch:c"),  // beyond the limit: counted only
        ]
        #expect(seen == [true, false, false, true, true, false])
        #expect(l.suppressed == 3)
        l.forget("mismatch:a")
        let again = l.first("mismatch:a")
        #expect(again)
    }
}

/// ChunkFetch with a peer that keeps sending bad bytes: bounded requests, reported once.
@Suite struct ChunkFetchBackoffTests {
    func refs(_ n: Int) -> ([Manifest.ChunkRef], [String: Data]) {
        var bytes = [String: Data]()
        let r = (0..<n).map { i -> Manifest.ChunkRef in
            let d = SampleMedia.bytes(count: 1_000 + i, seed: UInt64(i))
            bytes[Chunker.name(d)] = d
            return .init(hash: Chunker.name(d), size: d.count)
        }
        return (r, bytes)
    }

    /// Ten simulated minutes against a peer that answers every request at once, with bad bytes for
    /// one chunk: before backoff that was one request per round trip (thousands); now about ten.
    @Test func aChunkAlwaysCorruptIsAskedForRarelyAndReportedOnce() {
        let (r, bytes) = refs(4)
        let victim = r[1].hash
        var f = ChunkFetch(missing: r, window: 2, timeout: 30_000, source: "the hub", seed: 9)
        var asked = 0, reportedBad = 0, warnings = 0
        var now: Int64 = 0
        while now < 600_000 {
            for h in f.nextRequests(now: now) {
                var data = bytes[h]!
                if h == victim {
                    asked += 1
                    data[data.count / 2] ^= 0xFF
                }
                switch f.received(hash: h, bytes: data, now: now) {
                case .verified: f.stored(h)
                case .mismatch(_, let failures):
                    if failures == 1 { warnings += 1 }
                    if failures == ChunkFetch.badSourceThreshold { reportedBad += 1 }
                case .unexpected: Issue.record("unexpected")
                }
            }
            now += 100
        }
        #expect(asked >= 5 && asked <= 10, "asked \(asked) times in 10 min")
        #expect(warnings == 1 && reportedBad == 1)
        #expect(f.remaining == 1 && f.storedCount == 3)  // the good chunks were not held up
        #expect(f.badChunks == [victim: asked])
        #expect(f.sourceProblem == .chunkFailedVerification(hash: victim, times: asked, source: "the hub"))
        #expect(f.sourceProblem!.description == "chunk \(victim) failed verification \(asked) times from the hub")
        // Never waiting longer than the cap.
        #expect(f.retryAt(victim) - now <= 600_000)
    }

    @Test func goodBytesClearTheProblemAndAReannouncementAsksAtOnce() throws {
        let tmp = try TemporaryDirectory(prefix: "hocvu-backoff")
        defer { tmp.remove() }
        let fx = try ReleaseFixture(root: tmp.path, mediaBytes: 256 << 10)
        let release = try fx.build(version: 2).signed()
        let manifest = try Manifest.decode(release.manifestBytes)
        let source = try fx.build(version: 2).chunkStore()
        var d = ReleaseDownload(trust: fx.trust, installedVersion: 1)
        guard case .fetch = d.offered(release, nowSeconds: manifest.created + 1) else { Issue.record("not accepted"); return }
        d.begin(release, manifest: manifest, missing: manifest.chunks, backoff: .init(base: 1_000, cap: 8_000), source: "the hub", seed: 3)
        let victim = manifest.chunks[0].hash
        var now: Int64 = 0
        var failures = 0
        while failures < ChunkFetch.badSourceThreshold {
            for h in d.nextRequests(now: now) {
                var data = try source.read(h)
                if h == victim { data.append(0) }  // one byte too many
                if case .mismatch(let why, let n) = d.received(hash: h, bytes: data, now: now) {
                    #expect(why == .chunkHashMismatch(expected: victim, actual: Chunker.name(data)))
                    failures = n
                } else {
                    d.stored(h)
                }
            }
            now += 50
        }
        // Status names the chunk, the count and the source.
        #expect(d.lastRefusal?.description == "chunk \(victim) failed verification 3 times from the hub")
        let backingOff = d.nextRequests(now: now)
        #expect(backingOff.isEmpty)
        d.retryNow()  // the hub announced the release again (repaired)
        let asked = d.nextRequests(now: now)
        #expect(asked == [victim])
        let outcome = d.received(hash: victim, bytes: try source.read(victim), now: now)
        #expect(outcome == .verified)
        d.stored(victim)
        #expect(d.lastRefusal == nil)
        #expect(d.readyToInstall != nil)
    }

    @Test func aDamagedChunkCanBeAddedBackToAFetch() {
        let (r, _) = refs(2)
        var f = ChunkFetch(missing: [r[0]], window: 4)
        f.add(r[0])  // already wanted: no duplicate
        f.add(r[1])
        let asked = f.nextRequests(now: 0)
        #expect(asked == [r[0].hash, r[1].hash])
        f.add(r[1])  // outstanding: no duplicate
        #expect(f.remaining == 2)
    }
}
