import Foundation
import Merge
import Node
import Release
import TestSupport
import Testing

/// The site's clock, download-rate and reconnect rules without sockets: the policies decide,
/// SiteClient persists, logs and sends (the same rules run over CURVE in TrustBoundaryTests and
/// ReleaseSyncTests).
@Suite("Site clock, rate-cap and reconnect policy (no sockets)")
struct SitePolicyTests {
    let now: Int64 = 1_780_000_000_000  // 2026, after the programme started
    let day = ProtocolLimits.maxAdoptedClockOffsetMilliseconds

    @Test("a hub offset over a second from the one in use is adopted; within a second it is noise")
    func adoptOrAgree() {
        var c = ClockAdoption()
        #expect(c.measured(90_000, systemNow: now, inUse: 0) == .adopt(90_000))
        #expect(c.measured(90_500, systemNow: now, inUse: 90_000) == .agree)
        #expect(c.measured(-day, systemNow: now, inUse: 90_000) == .adopt(-day))  // exactly 24 h: still believed
    }

    @Test("the same measurement is judged once; no measurement decides nothing")
    func judgedOnce() {
        var c = ClockAdoption()
        #expect(c.measured(nil, systemNow: now, inUse: 0) == nil)
        #expect(c.measured(5_000, systemNow: now, inUse: 0) == .adopt(5_000))
        #expect(c.measured(5_000, systemNow: now, inUse: 5_000) == nil)
    }

    @Test("a hub over 24 h away is not believed: our time stays, the disagreement says how far and what to check")
    func disagreement() {
        var c = ClockAdoption()
        let d = c.measured(day + 1_000, systemNow: now, inUse: 0)
        #expect(d == .disagree("the hub's clock differs from this computer's by 86401 s (over 24 h); not adopted: check the time here (timedatectl) and at the hub"))
        // Back within the bound: the disagreement is over.
        #expect(c.measured(0, systemNow: now, inUse: 0) == .agree)
    }

    @Test("a PC clock before the programme started is certainly wrong: the hub's time is adopted even years away")
    func certainlyWrongLocalClock() {
        var c = ClockAdoption()
        let year2000: Int64 = 946_684_800_000
        #expect(c.measured(now - year2000, systemNow: year2000, inUse: 0) == .adopt(now - year2000))
        #expect(c.measured(.min, systemNow: year2000, inUse: 0) == .disagree(
            "the hub's clock differs from this computer's by \(Int64.min / 1_000) s (over 24 h); not adopted: check the time here (timedatectl) and at the hub"))
    }

    @Test("the rate cap: a tenth of a second's worth at once, then the rate times the time since the fetch began")
    func rateCapBudget() {
        var cap = FetchRateCap(bytesPerSecond: 1_000_000)
        cap.restart(now: 10_000)
        #expect(cap.budget(now: 10_000) == 100_000)
        cap.requested(100_000)
        #expect(cap.budget(now: 10_000) == 0)
        #expect(cap.budget(now: 10_500) == 500_000)
        cap.restart(now: 20_000)
        #expect(cap.requestedBytes == 0 && cap.budget(now: 20_000) == 100_000)
        #expect(FetchRateCap(bytesPerSecond: nil).budget(now: 0) == .max)
    }

    @Test("chunks are asked for within the window and the cap, and their bytes count against it")
    func rateCapRequests() throws {
        let tmp = try TemporaryDirectory(prefix: "hocvu-ratecap")
        defer { tmp.remove() }
        let fx = try ReleaseFixture(root: tmp.path, mediaBytes: 1 << 20)
        let release = try fx.build(version: 2).signed()
        let manifest = try Manifest.decode(release.manifestBytes)
        #expect(manifest.chunks.count >= 3)
        var d = ReleaseDownload(trust: fx.trust, installedVersion: 1, window: 8)
        guard case .fetch = d.offered(release, nowSeconds: manifest.created + 1) else { Issue.record("not accepted"); return }
        d.begin(release, manifest: manifest, missing: manifest.chunks, source: "the hub", seed: 1)
        // A cap that allows about one chunk at once.
        let first = manifest.chunks[0].size
        var cap = FetchRateCap(bytesPerSecond: first * 10)
        cap.restart(now: 0)
        let asked = cap.nextRequests(&d, now: 0)
        #expect(asked == [manifest.chunks[0].hash])
        #expect(cap.requestedBytes == first)
        #expect(cap.nextRequests(&d, now: 0).isEmpty)  // nothing more until time passes
        var uncapped = FetchRateCap(bytesPerSecond: nil)
        #expect(uncapped.nextRequests(&d, now: 0).count == min(7, manifest.chunks.count - 1))  // the window's rest
    }

    @Test("the fetch step: requests within the cap, then nothing until time passes, then the install once every chunk is held")
    func fetchSteps() throws {
        let tmp = try TemporaryDirectory(prefix: "hocvu-fetchstep")
        defer { tmp.remove() }
        let fx = try ReleaseFixture(root: tmp.path, mediaBytes: 256 << 10)
        let release = try fx.build(version: 2).signed()
        let manifest = try Manifest.decode(release.manifestBytes)
        let source = try fx.build(version: 2).chunkStore()
        var d = ReleaseDownload(trust: fx.trust, installedVersion: 1, window: 8)
        guard case .fetch = d.offered(release, nowSeconds: manifest.created + 1) else { Issue.record("not accepted"); return }
        d.begin(release, manifest: manifest, missing: manifest.chunks, source: "the hub", seed: 1)
        var cap = FetchRateCap(bytesPerSecond: nil)
        guard case .request(let hashes) = SiteReleaseFetch.next(&d, cap: &cap, now: 0) else { Issue.record("no request"); return }
        #expect(hashes.count == min(8, manifest.chunks.count))
        // Every chunk the window allows is outstanding: nothing more is asked for until some arrive.
        #expect(SiteReleaseFetch.next(&d, cap: &cap, now: 0) == .wait)
        for h in hashes where d.received(hash: h, bytes: try source.read(h), now: 1) == .verified { d.stored(h) }
        var now: Int64 = 2
        while d.readyToInstall == nil, now < 100 {
            if case .request(let more) = SiteReleaseFetch.next(&d, cap: &cap, now: now) {
                for h in more where d.received(hash: h, bytes: try source.read(h), now: now) == .verified { d.stored(h) }
            }
            now += 1
        }
        #expect(SiteReleaseFetch.next(&d, cap: &cap, now: now) == .install(release, manifest))
    }

    @Test("a chunk failing verification is logged at its first failure and when the hub turns a bad source, never per retry")
    func mismatchLoggedTwiceAtMost() {
        var logged = LogOnce()
        let hash = String(repeating: "d", count: 64)
        let refusal = ReleaseRefusal.chunkHashMismatch(expected: hash, actual: String(repeating: "e", count: 64))
        var notes: [String] = []
        for failures in 1...(ChunkFetch.badSourceThreshold + 3) {
            if let n = SiteReleaseFetch.mismatchNote(hash: hash, refusal: refusal, failures: failures, logged: &logged) { notes.append(n.message) }
        }
        #expect(notes == [
            "Dropped a release chunk that failed verification",
            "A release chunk keeps failing verification; backing off (up to the cap) and asking again",
        ])
    }

    @Test("the first reconnect delay is base plus the injected jitter from 0…2×base; extremes do not overflow")
    func reconnectJitter() {
        var asked: ClosedRange<Int32>?
        #expect(ReconnectTiming.initialDelay(base: 1_000) { asked = $0; return 1_234 } == 2_234)
        #expect(asked == 0...2_000)
        #expect(ReconnectTiming.initialDelay(base: .max) { $0.upperBound } == .max)
        #expect(ReconnectTiming.initialDelay(base: 0) { $0.upperBound } == 0)
    }

    @Test("failover: the first hub while it serves; the next after the delay plus jitter once it does not; round again")
    func hubFailover() {
        var drawn: [ClosedRange<Int64>] = []
        var f = HubFailover(endpoints: ["a", "b", "c"], afterMilliseconds: 1_000, now: 0) { drawn.append($0); return 400 }
        #expect(f.endpoint == "a" && f.isPrimary && f.deadline == 1_400 && drawn == [0...1_000])
        #expect(f.next(now: 1_399) { _ in 0 } == nil)  // not due yet: the first connection gets its chance
        f.served()  // WELCOME
        #expect(f.deadline == nil && f.next(now: 99_999) { _ in 0 } == nil)  // serving: stay, however long
        f.troubled(now: 10_000) { _ in 1_000 }  // connection lost: count from here, jitter up to as much again
        f.troubled(now: 10_500) { _ in 0 }  // already counting: the first trouble sets the deadline
        #expect(f.deadline == 12_000)
        #expect(f.next(now: 11_999) { _ in 0 } == nil)
        #expect(f.next(now: 12_000) { _ in 7 } == "b" && !f.isPrimary && f.deadline == 13_007)
        #expect(f.next(now: 13_007) { _ in 0 } == "c")
        #expect(f.next(now: 14_007) { _ in 0 } == "a" && f.isPrimary)  // round again
        // A jitter source out of range, or a clock at the end of time, never traps or goes back.
        var g = HubFailover(endpoints: ["a", "b"], afterMilliseconds: 1_000, now: .max - 10) { _ in .max }
        #expect(g.deadline == .max)
        g.troubled(now: 0) { _ in -5 }
        // One hub only: never moves.
        var one = HubFailover(endpoints: ["a"], afterMilliseconds: 1, now: 0) { _ in 0 }
        #expect(one.next(now: .max) { _ in 0 } == nil && one.endpoint == "a")
    }
}
