import Foundation
import Node
import Testing

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
