import Foundation
import Merge
import Node
import Release
import Store
import TestSupport
import Testing

/// Real disks that fill (a small tmpfs, real SQLite and chunk files, real CURVE sockets): what was
/// not committed is never acknowledged, the daemon says which path and how much space is left,
/// keeps serving, and recovers by itself once space is freed.
@Suite("A full disk during sync and during a release fetch", .serialized)
struct DiskFullSyncTests {
    @Test(
        "the hub's disk fills mid-sync: nothing unstored is acknowledged, the site is told BUSY and resends; freed space → every change arrives once",
        .enabled(if: SmallFilesystem.available, "skipped: mounting a small tmpfs needs root (CI runs as root)"))
    func hubDiskFills() throws {
        let fs = try #require(SmallFilesystem.mount(kibibytes: 8 * 1024))
        defer { fs.unmount() }
        let fleet = try Fleet(communes: [70], hubDatabase: fs.path + "/hub.sqlite", hub: { $0.diskFullRetrySeconds = 1 })
        defer { fleet.shutdown() }
        let site = fleet.sites[0]
        try recordResults(site.store, commune: 70, first: 0, count: 20)
        try fleet.startSite(site)
        #expect(try eventually { try fleet.hubHasAll(of: site) })

        let filler = try fs.fill(leaving: 32 * 1024)
        try recordResults(site.store, commune: 70, first: 100, count: 400)
        #expect(eventually(30) { fleet.hub.stats.diskFull != nil }, "the hub noticed its full disk")
        let detail = fleet.hub.stats.diskFull ?? ""
        #expect(detail.hasPrefix("disk full: cannot write \(fs.path)/hub.sqlite ("), "names the path: \(detail)")
        #expect(detail.contains("free on the filesystem holding \(fs.path)"))
        #expect(fleet.hub.stats.refusals[RefusalKey(commune: 70, reason: "disk_full"), default: 0] > 0, "visible per site and reason")
        // Nothing unstored was acknowledged: whatever the site believes the hub holds, it holds.
        let hubVV = try fleet.hubStore.versionVector()
        for (origin, seq) in site.client!.status.hubHas.entries { #expect(hubVV[origin] >= seq) }
        #expect(try !fleet.hubHasAll(of: site))
        #expect(fleet.hub.isAlive, "the hub keeps serving")
        #expect(!fleet.hub.hasFinished)

        // Space freed: the site's resends land, once each, with nobody touching anything.
        try FileManager.default.removeItem(atPath: filler)
        #expect(try eventually(60) { try fleet.hubHasAll(of: site) })
        #expect(try fleet.hubStore.count("attempt") == 420)
        #expect(try fleet.hubStore.count("learner") == 420)
        #expect(try fleet.hubStore.quarantine().isEmpty)
        #expect(eventually { fleet.hub.stats.diskFull == nil })
    }

    @Test(
        "a site's disk fills during a release fetch: results keep syncing, status names the path and the space left; freed space → the release installs",
        .enabled(if: SmallFilesystem.available, "skipped: mounting a small tmpfs needs root (CI runs as root)"))
    func siteDiskFillsDuringReleaseFetch() throws {
        let fs = try #require(SmallFilesystem.mount(kibibytes: 8 * 1024))
        defer { fs.unmount() }
        let tmp = try TemporaryDirectory(prefix: "hocvu-rel")
        defer { tmp.remove() }
        let fx = try ReleaseFixture(root: tmp.path, mediaBytes: 4 << 20)
        let fleet = try Fleet(communes: [70]) { dir in HubServer.ReleaseSettings(trust: fx.trust, chunkDirectory: dir) }
        defer { fleet.shutdown() }
        let chunks = fs.path + "/chunks"
        fleet.siteFetch = { var c = $0; c.fetchTimeoutMilliseconds = 1_000; c.chunkDirectory = chunks; return c }
        let site = fleet.sites[0]
        try fleet.startSite(site)
        #expect(eventually { fleet.hub.stats.connectedCommunes == [70] })
        let filler = try fs.fill(leaving: 1 << 20)

        var publisher = ReleasePublisher(
            hubEndpoint: fleet.endpoint, hubTransportKey: fleet.hubKeys.publicKey, transportKeys: fx.admins[0].transport,
            logger: quietLogger)
        publisher.idleTimeoutSeconds = 10
        _ = try publisher.publish(try fx.build(version: 2))
        #expect(eventually(30) { site.client?.status.chunkStoreError?.hasPrefix("disk full: cannot write chunk") == true })
        let error = site.client?.status.chunkStoreError ?? ""
        #expect(error.contains(chunks) && error.contains("free on that filesystem"), "names the path and the space: \(error)")
        #expect(try site.store.curriculumVersion() != 2, "nothing half-fetched is installed")

        // Results keep syncing while the release waits for space.
        try recordResults(site.store, commune: 70, first: 0, count: 5)
        #expect(try eventually { try fleet.hubHasAll(of: site) })
        #expect(site.client?.hasFinished == false)

        try FileManager.default.removeItem(atPath: filler)
        #expect(eventually(90) { (try? site.store.curriculumVersion()) == 2 }, "the fetch resumed by itself")
        #expect(site.client?.status.chunkStoreError == nil)
    }
}
