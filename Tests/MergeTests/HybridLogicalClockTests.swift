import Merge
import Testing

@Suite("Hybrid logical clock")
struct HybridLogicalClockTests {
    @Test("local ticks strictly increase, even when physical time stands still or goes back")
    func ticksIncrease() throws {
        var clock = HybridLogicalClock()
        let a = try clock.tick(now: 1_000)
        let b = try clock.tick(now: 1_000)
        let c = try clock.tick(now: 900)  // wall clock stepped back (NTP, a wrong BIOS clock)
        let d = try clock.tick(now: 2_000)
        #expect(a < b && b < c && c < d)
        #expect(c.milliseconds == 1_000 && c.counter == 2)
        #expect(d == HLCTimestamp(milliseconds: 2_000, counter: 0))
    }

    @Test("observing a remote stamp orders later local stamps after it")
    func observeRemote() throws {
        var clock = HybridLogicalClock()
        let remote = HLCTimestamp(milliseconds: 5_000, counter: 7)
        try clock.observe(remote: remote, now: 4_999)
        let next = try clock.tick(now: 4_999)
        #expect(next > remote)
        #expect(next.milliseconds == 5_000)
    }

    @Test("a remote stamp more than five minutes ahead is refused and leaves the clock alone")
    func refusesFarFuture() throws {
        var clock = HybridLogicalClock()
        _ = try clock.tick(now: 10_000)
        let before = clock.last
        let farAhead = HLCTimestamp(milliseconds: 10_000 + 5 * 60 * 1000 + 1, counter: 0)
        #expect(throws: ClockError.self) { try clock.observe(remote: farAhead, now: 10_000) }
        #expect(clock.last == before)
        let justInside = HLCTimestamp(milliseconds: 10_000 + 5 * 60 * 1000, counter: 0)
        try clock.observe(remote: justInside, now: 10_000)
        #expect(clock.last > justInside)
    }

    @Test("the counter refuses to wrap within one millisecond")
    func counterExhaustion() throws {
        var clock = HybridLogicalClock(last: HLCTimestamp(milliseconds: 1, counter: .max))
        #expect(throws: ClockError.counterExhausted) { try clock.tick(now: 1) }
        #expect(try clock.tick(now: 2) == HLCTimestamp(milliseconds: 2, counter: 0))
    }

    @Test("packing keeps 48 bits of milliseconds and 16 of counter")
    func packing() {
        let t = HLCTimestamp(milliseconds: 0xABCD_EF01_2345, counter: 0x6789)
        #expect(t.milliseconds == 0xABCD_EF01_2345)
        #expect(t.counter == 0x6789)
        #expect(HLCTimestamp(milliseconds: 2, counter: 0) > HLCTimestamp(milliseconds: 1, counter: .max))
    }
}
