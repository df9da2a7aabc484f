import Node
import Testing

@Suite("Refusal logs are rate-limited per peer and reason; the counts stay exact")
struct LogRateLimiterTests {
    @Test("the first of each key logs at once; then one line per interval carrying the suppressed count")
    func limits() {
        var l = LogRateLimiter(interval: 60_000)
        let a = RefusalKey(commune: 70, reason: "bad_signature"), b = RefusalKey(commune: 73, reason: "bad_signature")
        #expect(l.admit(a, now: 0) == 0)
        for t in 1...1_000 { #expect(l.admit(a, now: Int64(t)) == nil) }
        #expect(l.admit(b, now: 10) == 0, "another site is not silenced by the first")
        #expect(l.admit(a, now: 60_000) == 1_000)
        #expect(l.admit(a, now: 60_001) == nil)
    }

    @Test("a flood of distinct keys cannot grow memory past the capacity")
    func bounded() {
        var l = LogRateLimiter(interval: 60_000, capacity: 100)
        for i in 0..<10_000 { _ = l.admit(RefusalKey(commune: nil, reason: "k\(i)"), now: Int64(i)) }
        // The oldest were forgotten: an early key logs again at once.
        #expect(l.admit(RefusalKey(commune: nil, reason: "k0"), now: 10_001) == 0)
    }
}
