import Merge
import Testing

@Suite("Protocol limits: what a peer may send, checked before any arithmetic")
struct ProtocolLimitsTests {
    @Test("batch ranges: 1 ≤ first ≤ last ≤ 2^53−1 and at most the change limit", arguments: [
        (UInt64(1), UInt64(1), true), (1, 20_000, true), (1, 20_001, false), (0, 0, false), (5, 4, false),
        (ProtocolLimits.maxSequence, ProtocolLimits.maxSequence, true),
        (ProtocolLimits.maxSequence, ProtocolLimits.maxSequence + 1, false),
        (UInt64(1) << 63, UInt64(1) << 63, false), (1, UInt64.max, false), (UInt64.max, UInt64.max, false),
    ])
    func batchRange(first: UInt64, last: UInt64, valid: Bool) {
        #expect(ProtocolLimits.isValidBatchRange(first: first, last: last, maxChanges: 20_000) == valid)
    }

    @Test("clock readings lie between the programme's start and the HLC's 48 bits")
    func clocks() {
        #expect(!ProtocolLimits.isValidClock(Int64.min) && !ProtocolLimits.isValidClock(0))
        #expect(!ProtocolLimits.isValidClock(ProtocolLimits.programmeStartMilliseconds - 1))
        #expect(ProtocolLimits.isValidClock(ProtocolLimits.programmeStartMilliseconds))
        #expect(ProtocolLimits.isValidClock((1 << 48) - 1) && !ProtocolLimits.isValidClock(1 << 48))
        #expect(!ProtocolLimits.isValidClock(Int64.max))
    }

    @Test("credit and retry-after are clamped, never trusted")
    func clamps() {
        #expect(ProtocolLimits.clampedCredit(0) == 1 && ProtocolLimits.clampedCredit(.max) == 64)
        #expect(ProtocolLimits.clampedCredit(4) == 4)
        #expect(ProtocolLimits.clampedRetryAfter(0) == 1 && ProtocolLimits.clampedRetryAfter(.max) == 3_600)
    }
}
