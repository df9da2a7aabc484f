import Foundation
import Node
import Release
import TestSupport
import Testing
import Wire

/// The hub's chunk-serving rules without sockets or files: HubReleaseServing decides, HubServer
/// and HubReleases read, move and send (the same rules run over CURVE in ReleaseSyncTests).
@Suite("Hub release serving policy (no sockets, no files)")
struct HubReleaseServingTests {
    let a = String(repeating: "a", count: 64)
    let b = String(repeating: "b", count: 64)
    let site1 = Data([1])
    let site2 = Data([2])

    func policy(slots: Int = 2, idle: Int64 = 10_000, retry: UInt32 = 20) -> HubReleaseServing {
        HubReleaseServing(
            limits: .init(maxConcurrentTransfers: slots, transferIdleMilliseconds: idle, retryAfterSeconds: retry),
            currentVersion: 3, sizes: [a: 4, b: 2])
    }
    /// The jitter a test chooses: the top of the range it is given (and the range, checked).
    func top(_ range: ClosedRange<UInt32>) -> UInt32 { range.upperBound }

    @Test("a current chunk not yet verified is read from disk first; once verified it is sent and cached")
    func readThenSend() {
        var p = policy()
        #expect(p.siteRequested([a], from: site1, now: 0, jitter: top) == [.read(hash: a, size: 4)])
        let bytes = Data([1, 2, 3, 4])
        #expect(p.read(a, .verified(bytes), forSite: true) == [.send(hash: a, data: bytes)])
        #expect(p.cachedChunks == 1)
        // The next site gets the cached bytes without a read.
        #expect(p.siteRequested([a], from: site2, now: 1, jitter: top) == [.send(hash: a, data: bytes)])
    }

    @Test("chunks outside the current release (or of an unknown release) are refused as one counted UNKNOWN_CHUNK")
    func unknownChunks() {
        var p = policy()
        let other = String(repeating: "c", count: 64)
        let actions = p.siteRequested([other, a, "not-a-hash"], from: site1, now: 0, jitter: top)
        #expect(actions == [.read(hash: a, size: 4), .refuse(.unknownChunk, count: 2, detail: "chunks not in the current release asked for")])
        var none = HubReleaseServing(
            limits: .init(maxConcurrentTransfers: 1, transferIdleMilliseconds: 1, retryAfterSeconds: 1), currentVersion: 0, sizes: [:])
        #expect(none.siteRequested([a], from: site1, now: 0, jitter: top) == [.refuse(.unknownChunk, count: 1, detail: "chunks not in the current release asked for")])
    }

    @Test("over the transfer limit a new site is told to come back after retry-after plus injected jitter (up to half)")
    func transferLimit() {
        var p = policy(slots: 1, retry: 20)
        _ = p.siteRequested([a], from: site1, now: 0, jitter: top)
        var asked: ClosedRange<UInt32>?
        let deferred = p.siteRequested([a], from: site2, now: 100) { asked = $0; return 7 }
        #expect(asked == 0...10)
        #expect(deferred == [.tryLater(seconds: 27, reason: "the hub is serving its limit of 1 release transfers")])
        #expect(p.activeTransfers == 1)
        // The site holding the slot keeps it; once it is idle past the window the slot is free.
        #expect(p.siteRequested([b], from: site1, now: 200, jitter: top) == [.read(hash: b, size: 2)])
        #expect(p.siteRequested([a], from: site2, now: 10_200, jitter: top) == [.read(hash: a, size: 4)])
        #expect(p.activeTransfers == 1)
    }

    @Test("a rotted chunk: not sent, counted, quarantined; alerted and logged once; a second read alerts nothing new")
    func rottedChunk() {
        var p = policy()
        #expect(p.read(a, .corrupt("4 bytes, not 5"), forSite: true) == [.quarantine(hash: a, why: "4 bytes, not 5"), .countLogged(.chunkUnavailable)])
        #expect(p.damaged == [a])
        let first = p.quarantined(a, why: "4 bytes, not 5", movedTo: .moved(to: "/q/a.1"), refetching: false)
        let alert = "chunk \(a) of release 3 was damaged on the hub's disk (4 bytes, not 5); moved to /q/a.1; re-publish release 3 (hocvu admin release publish) to repair it"
        #expect(first.contains(.alert(alert)))
        #expect(first.contains { if case .log(.critical, _, _) = $0 { true } else { false } })
        // Quarantined now: the file is gone; asking again counts but logs and alerts nothing.
        #expect(p.read(a, .missing, forSite: true) == [.countLogged(.chunkUnavailable)])
        #expect(p.quarantined(a, why: "again", movedTo: .moved(to: "/q/a.2"), refetching: false).isEmpty)
    }

    @Test("a rotted chunk an admin is publishing is re-fetched, and the alert says so; a failed move is logged once")
    func rottedWhilePublishing() {
        var p = policy()
        _ = p.read(b, .corrupt("hash differs"), forSite: true)
        let actions = p.quarantined(b, why: "hash differs", movedTo: .notMoved(reason: "EACCES"), refetching: true)
        #expect(actions.first == .log(.error, "Cannot quarantine a damaged chunk", metadata: ["chunk": b, "error": "EACCES"]))
        #expect(actions.contains(.alert("chunk \(b) of release 3 was damaged on the hub's disk (hash differs); moved to could not be moved aside; re-fetching it from the admin publishing now")))
    }

    @Test("good bytes again (restored by hand, or sent by an admin) clear the damage: a new rot alerts again")
    func restoredThenRotsAgain() {
        var p = policy()
        _ = p.read(a, .corrupt("x"), forSite: true)
        _ = p.quarantined(a, why: "x", movedTo: .moved(to: "/q"), refetching: false)
        p.restored(a)
        #expect(p.damaged.isEmpty)
        _ = p.read(a, .corrupt("y"), forSite: true)
        #expect(p.quarantined(a, why: "y", movedTo: .moved(to: "/q"), refetching: false).contains { if case .alert = $0 { true } else { false } })
    }

    @Test("a missing or unreadable chunk is logged once per chunk, counted every time; a hub self-check counts nothing")
    func missingAndUnreadable() {
        var p = policy()
        let missing = p.read(a, .missing, forSite: true)
        #expect(missing.count == 2 && missing.last == .countLogged(.chunkUnavailable))
        #expect(p.read(a, .missing, forSite: true) == [.countLogged(.chunkUnavailable)])
        #expect(p.read(b, .failed("EIO"), forSite: true) == [.log(.error, "Cannot read a chunk to serve", metadata: ["chunk": b, "error": "EIO"]), .countLogged(.chunkUnavailable)])
        #expect(p.read(b, .failed("EIO"), forSite: false).isEmpty)
        #expect(p.read(b, .verified(Data([9, 9])), forSite: false).isEmpty)  // checked, not sent
    }

    @Test("a new release replaces the served set: the old one's chunks are unknown, the cache is emptied, damage kept only for chunks still current")
    func installedNewRelease() {
        var p = policy()
        _ = p.read(a, .verified(Data([1, 2, 3, 4])), forSite: true)
        _ = p.read(b, .corrupt("x"), forSite: true)
        p.installed(version: 4, sizes: [b: 2])
        #expect(p.currentVersion == 4 && p.cachedChunks == 0 && p.damaged == [b])
        #expect(p.siteRequested([a], from: site1, now: 0, jitter: top) == [.refuse(.unknownChunk, count: 1, detail: "chunks not in the current release asked for")])
    }
}

/// The hub's rules for what an admin publishes, without sockets: HubReleasePublishing decides,
/// HubReleases fetches, installs and replies.
@Suite("Hub release publishing verdicts (no sockets)")
struct HubReleasePublishingTests {
    @Test("an under-signed, rolled-back or repeated release is refused with the reason; only a real refusal is logged")
    func offers() throws {
        let tmp = try TemporaryDirectory(prefix: "hocvu-publish")
        defer { tmp.remove() }
        let fx = try ReleaseFixture(root: tmp.path, mediaBytes: 64 << 10)
        let v3 = try fx.build(version: 3).signed()
        let created = try Manifest.decode(v3.manifestBytes).created

        var atFour = ReleaseDownload(trust: fx.trust, installedVersion: 4)
        let rollback = HubReleasePublishing.offer(atFour.offered(v3, nowSeconds: created + 1), currentVersion: 4)
        let refusal = ReleaseRefusal.rollback(offered: 3, current: 4)
        #expect(rollback == .refuse(.refuse(code: .releaseRefused, reason: refusal.description, retryAfterSeconds: 0), logged: refusal))

        let underSigned = try fx.build(version: 5, signers: 1).signed()
        var fresh = ReleaseDownload(trust: fx.trust, installedVersion: 2)
        guard case .refuse(_, let why?) = HubReleasePublishing.offer(fresh.offered(underSigned, nowSeconds: created + 1), currentVersion: 2) else {
            Issue.record("an under-signed release was not refused"); return
        }
        #expect(why == .belowThreshold(valid: 1, required: 2))

        let same = HubReleasePublishing.offer(.alreadyHave, currentVersion: 3)
        #expect(same == .refuse(
            .refuse(code: .releaseRefused, reason: "release version 3 is already the hub's current release; publish a higher version", retryAfterSeconds: 0),
            logged: nil))

        guard case .fetch(let manifest) = HubReleasePublishing.offer(fresh.offered(v3, nowSeconds: created + 1), currentVersion: 2) else {
            Issue.record("a good release was not fetched"); return
        }
        #expect(manifest.version == 3)
    }

    @Test("a chunk from the admin failing verification is asked for again (logged once), then the publication is refused")
    func failingChunk() {
        var logged = LogOnce()
        let hash = String(repeating: "f", count: 64)
        let refusal = ReleaseRefusal.chunkHashMismatch(expected: hash, actual: String(repeating: "0", count: 64))
        #expect(HubReleasePublishing.chunkFailed(hash: hash, refusal: refusal, failures: 1, logged: &logged) == .askAgain(log: "\(refusal)"))
        #expect(HubReleasePublishing.chunkFailed(hash: hash, refusal: refusal, failures: 2, logged: &logged) == .askAgain(log: nil))
        guard case .refusePublication(let reply, let reason) = HubReleasePublishing.chunkFailed(
            hash: hash, refusal: refusal, failures: ChunkFetch.badSourceThreshold, logged: &logged)
        else { Issue.record("not refused at the threshold"); return }
        #expect(reason.hasPrefix("chunk \(hash) failed verification \(ChunkFetch.badSourceThreshold) times from the admin"))
        #expect(reason.contains("hocvu admin release verify"))
        #expect(reply == .refuse(code: .releaseRefused, reason: reason, retryAfterSeconds: 0))
    }
}
