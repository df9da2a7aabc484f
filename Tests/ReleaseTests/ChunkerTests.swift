import Foundation
import Release
import TestSupport
import Testing

@Suite struct ChunkerTests {
    @Test func chunksCoverTheFileWithinBoundsAndAverageNear256KiB() {
        let data = SampleMedia.bytes(count: 48 << 20, seed: 1)
        let ranges = Chunker.ranges(data)
        #expect(ranges.first?.lowerBound == 0)
        #expect(ranges.last?.upperBound == data.count)
        for (a, b) in zip(ranges, ranges.dropFirst()) { #expect(a.upperBound == b.lowerBound) }
        for r in ranges.dropLast() {
            #expect(r.count >= Chunker.minimumSize)
            #expect(r.count <= Chunker.maximumSize)
        }
        let average = data.count / ranges.count
        #expect((192 << 10)...(320 << 10) ~= average, "average chunk \(average) bytes")
    }

    @Test func boundariesDependOnContentNotOffsets() {
        let original = SampleMedia.bytes(count: 16 << 20, seed: 2)
        var edited = original
        edited.insert(contentsOf: SampleMedia.bytes(count: 1_000, seed: 3), at: 8 << 20)
        let before = Set(Chunker.ranges(original).map { Chunker.name(original[$0]) })
        let afterChunks = Chunker.ranges(edited).map { Chunker.name(edited[$0]) }
        let changed = afterChunks.filter { !before.contains($0) }
        // One insertion disturbs the chunk it lands in and at most one neighbour.
        #expect(changed.count >= 1 && changed.count <= 2, "\(changed.count) chunks changed")
        #expect(afterChunks.count - changed.count >= before.count - 2)
    }

    @Test func smallAndEmptyFiles() {
        #expect(Chunker.ranges(Data()).isEmpty)
        #expect(Chunker.ranges(Data(repeating: 1, count: 10)) == [0..<10])
        // Constant bytes never match the mask: cut at the maximum.
        let flat = Data(repeating: 0, count: 3 << 20)
        #expect(Chunker.ranges(flat).dropLast().allSatisfy { $0.count == Chunker.maximumSize })
    }
}

@Suite struct ChunkFetchTests {
    func refs(_ n: Int) -> ([Manifest.ChunkRef], [String: Data]) {
        var bytes = [String: Data]()
        let r = (0..<n).map { i -> Manifest.ChunkRef in
            let d = SampleMedia.bytes(count: 100 + i, seed: UInt64(i))
            let h = Chunker.name(d)
            bytes[h] = d
            return .init(hash: h, size: d.count)
        }
        return (r, bytes)
    }

    @Test func windowBoundsOutstandingRequests() {
        let (r, bytes) = refs(20)
        var f = ChunkFetch(missing: r, window: 4)
        let first = f.nextRequests(now: 0)
        #expect(first.count == 4)
        #expect(f.nextRequests(now: 1).isEmpty)
        #expect(f.received(hash: first[0], bytes: bytes[first[0]]!, now: 1) == .verified)
        f.stored(first[0])
        #expect(f.nextRequests(now: 2).count == 1)
        #expect(f.storedCount == 1 && f.remaining == 19)
    }

    @Test func mismatchIsRefusedAndAskedAgainAfterABackoff() {
        let (r, bytes) = refs(2)
        var f = ChunkFetch(missing: r, window: 1, timeout: 30_000, seed: 1)
        let h = f.nextRequests(now: 0)[0]
        var wrong = bytes[h]!
        wrong[0] ^= 1
        guard case .mismatch(.chunkHashMismatch(let expected, _), failures: 1) = f.received(hash: h, bytes: wrong, now: 0) else {
            Issue.record("tampered chunk accepted"); return
        }
        #expect(expected == h)
        #expect(f.mismatches == 1 && f.storedCount == 0)
        // The other chunk goes on at once; the bad one waits out its backoff (1–2 s for a 30 s timeout).
        let other = f.nextRequests(now: 1)
        #expect(other.count == 1 && other[0] != h)
        #expect(f.received(hash: other[0], bytes: bytes[other[0]]!, now: 1) == .verified)
        f.stored(other[0])
        #expect(f.retryAt(h) >= 1_000 && f.retryAt(h) <= 2_000)
        let early = f.nextRequests(now: f.retryAt(h) - 1)
        #expect(early.isEmpty)
        let due = f.nextRequests(now: f.retryAt(h))
        #expect(due == [h])
        #expect(f.received(hash: h, bytes: bytes[h]!, now: 3_000) == .verified)
        f.stored(h)
        #expect(f.isComplete)
        #expect(f.received(hash: "00", bytes: Data(), now: 3_000) == .unexpected)
    }

    @Test func stalledAndLostRequestsAreReissued() {
        let (r, _) = refs(3)
        var f = ChunkFetch(missing: r, window: 3, timeout: 1_000, backoff: .init(base: 200, cap: 1_000))
        let asked = f.nextRequests(now: 0)
        #expect(f.nextRequests(now: 999).isEmpty)
        // Timed out at 1 000: each is asked for again after its backoff (100–200 ms), not at once.
        let atTimeout = f.nextRequests(now: 1_000)
        #expect(atTimeout.isEmpty && f.timeouts == 3)
        #expect(Set(f.nextRequests(now: 1_200)) == Set(asked))
        f.connectionLost()
        #expect(f.outstandingCount == 0 && f.remaining == 3)
        f.tryLater(now: 2_000, seconds: 5)
        #expect(f.nextRequests(now: 6_999).isEmpty)
        #expect(f.nextRequests(now: 7_000).count == 3)
    }

    @Test func byteBudgetLimitsRequests() {
        let (r, _) = refs(10)
        var f = ChunkFetch(missing: r, window: 10)
        #expect(f.nextRequests(now: 0, byteBudget: 150).count == 2)
        #expect(f.nextRequests(now: 0, byteBudget: 0).isEmpty)
    }
}
