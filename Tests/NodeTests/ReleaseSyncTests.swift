import Foundation
import Merge
import Node
import Release
import Sodium
import Store
import TestSupport
import Testing

/// Releases over tcp://127.0.0.1 with CURVE: admins publish to a real hub, real sites fetch.
@Suite(.serialized) struct ReleaseSyncTests {
    func makeFleet(_ fx: ReleaseFixture, communes: [Int], edit: @escaping (inout HubServer.ReleaseSettings) -> Void = { _ in }) throws -> Fleet {
        let fleet = try Fleet(communes: communes) { dir in
            var r = HubServer.ReleaseSettings(trust: fx.trust, chunkDirectory: dir)
            edit(&r)
            return r
        }
        fleet.siteFetch = { var c = $0; c.fetchTimeoutMilliseconds = 1_000; return c }
        return fleet
    }

    func publisher(_ fleet: Fleet, _ admin: ReleaseFixture.Admin) -> ReleasePublisher {
        var p = ReleasePublisher(
            hubEndpoint: fleet.endpoint, hubTransportKey: fleet.hubKeys.publicKey, transportKeys: admin.transport, logger: quietLogger)
        p.idleTimeoutSeconds = 10
        return p
    }

    func chunkSet(_ bundle: ReleaseBundle) throws -> [String: Int] {
        Dictionary(try Manifest.decode(bundle.manifestBytes()).chunks.map { ($0.hash, $0.size) }, uniquingKeysWith: { a, _ in a })
    }

    @Test func releaseReachesEverySiteAndAnEditMovesOnlyChangedChunks() throws {
        let tmp = try TemporaryDirectory(prefix: "hocvu-rel")
        defer { tmp.remove() }
        let fx = try ReleaseFixture(root: tmp.path, mediaBytes: 4 << 20)
        let fleet = try makeFleet(fx, communes: [70, 73, 4])
        defer { fleet.shutdown() }
        // Two sites are connected when the release is published; the third connects later.
        try fleet.startSite(fleet.sites[0])
        try fleet.startSite(fleet.sites[1])
        #expect(eventually { fleet.hub.stats.connectedCommunes.count == 2 })

        let v2 = try fx.build(version: 2)
        let result = try publisher(fleet, fx.admins[0]).publish(v2)
        #expect(result.version == 2)
        #expect(try fleet.hubStore.curriculumVersion() == 2)
        try fleet.startSite(fleet.sites[2])
        for s in fleet.sites {
            #expect(eventually(20) { (try? s.store.curriculumVersion()) == 2 }, "site \(s.commune) did not install release 2")
            #expect(try s.store.installedRelease()?.manifest == v2.manifestBytes())
            let v2Chunks = Set(try chunkSet(v2).keys)
            #expect(eventually { ChunkStore.held(in: fleet.chunkDirectory(s)) == v2Chunks })
            #expect(eventually { s.client?.status.installedRelease == 2 })
        }
        let v2Bytes = try chunkSet(v2).values.reduce(0, +)
        #expect(fleet.hub.stats.chunkBytesServed == 3 * v2Bytes)

        // An edited lesson video: bytes inserted mid-file. Only the chunks around the edit travel.
        try fx.insertIntoMedia(count: 300_000)
        let v3 = try fx.build(version: 3)
        let servedBefore = fleet.hub.stats.chunkBytesServed
        _ = try publisher(fleet, fx.admins[1]).publish(v3)
        for s in fleet.sites {
            #expect(eventually(20) { (try? s.store.curriculumVersion()) == 3 })
            // Chunks only v2 referenced are collected once v3 is in place (just after the switch).
            let v3Chunks = Set(try chunkSet(v3).keys)
            #expect(eventually { ChunkStore.held(in: fleet.chunkDirectory(s)) == v3Chunks })
        }
        let old = try chunkSet(v2), new = try chunkSet(v3)
        let changed = new.filter { old[$0.key] == nil }.values.reduce(0, +)
        #expect(changed >= 300_000 && changed < 300_000 + 3 * Chunker.maximumSize)
        #expect(fleet.hub.stats.chunkBytesServed - servedBefore == 3 * changed)
        // Every site held v2 and said so in HELLO: the new chunks went as deltas against the chunks
        // they replaced, so about the inserted bytes travelled, not the whole chunks around the edit.
        #expect(fleet.hub.stats.chunkDeltasServed >= 3)
        #expect(fleet.hub.stats.chunkDeltaBytesServed < 3 * (300_000 + 8_192))
        let m = try Manifest.decode(v3.manifestBytes())
        let video = m.files.first { $0.path == "media/video.bin" }!
        #expect(try ChunkStore(directory: fleet.chunkDirectory(fleet.sites[0])).assemble(video).count == (4 << 20) + 300_000)
    }

    @Test func hubRefusesBadReleasesAndKeepsItsOwn() throws {
        let tmp = try TemporaryDirectory(prefix: "hocvu-rel")
        defer { tmp.remove() }
        let fx = try ReleaseFixture(root: tmp.path, mediaBytes: 256 << 10)
        let fleet = try makeFleet(fx, communes: [70])
        defer { fleet.shutdown() }
        func refusal(_ bundle: ReleaseBundle, admin: ReleaseFixture.Admin? = nil) -> String {
            do {
                _ = try publisher(fleet, admin ?? fx.admins[0]).publish(bundle)
                return "accepted"
            } catch { return "\(error)" }
        }
        #expect(refusal(try fx.build(version: 2, signers: 1)).contains("1 valid admin signature(s) but the trust file requires 2"))
        #expect(refusal(try fx.build(version: 2, signers: 0)).contains("carries no signature"))
        let stranger = ReleaseFixture.Admin()
        let foreign = try fx.build(version: 2, signers: 0)
        try foreign.sign(with: stranger.signing)
        #expect(refusal(foreign).contains("which the trust file does not list"))
        #expect(refusal(try fx.build(version: 2, created: Int64(Date().timeIntervalSince1970) - 40 * 86_400)).contains("expired"))
        // Tampered after signing: the manifest bytes no longer match the signatures.
        let tampered = try fx.build(version: 2)
        var bytes = try tampered.manifestBytes()
        bytes.replaceSubrange(bytes.range(of: Data("\"passPercent\":80".utf8))!, with: Data("\"passPercent\":10".utf8))
        try bytes.write(to: URL(fileURLWithPath: tampered.manifestPath))
        #expect(refusal(tampered).contains("does not match the manifest"))
        // An admin transport key the hub does not pin cannot even connect.
        #expect(refusal(try fx.build(version: 2), admin: stranger).contains("secure handshake"))
        #expect(try fleet.hubStore.curriculumVersion() == 1)
        #expect(try fleet.hubStore.installedRelease() == nil)

        #expect(refusal(try fx.build(version: 4)) == "accepted")
        #expect(refusal(try fx.build(version: 3)).contains("rollback refused"))
        #expect(refusal(try fx.build(version: 4)).contains("already the hub's current release"))
        #expect(try fleet.hubStore.curriculumVersion() == 4)
        #expect(fleet.hub.stats.releasesRefused == 7)
    }

    /// Defence in depth: a site checks everything itself, even what its hub accepted.
    @Test func sitesRefuseWhatTheirOwnTrustFileDoesNotAllowAndCorruptChunks() throws {
        let tmp = try TemporaryDirectory(prefix: "hocvu-rel")
        defer { tmp.remove() }
        let fx = try ReleaseFixture(root: tmp.path, mediaBytes: 1 << 20)
        let fleet = try makeFleet(fx, communes: [70, 73])
        defer { fleet.shutdown() }
        let v2 = try fx.build(version: 2)
        _ = try publisher(fleet, fx.admins[0]).publish(v2)

        // Site 73 pins a stricter policy (all three admins): it refuses release 2 and applies nothing.
        fleet.siteTrust = try TrustPolicy(threshold: 3, admins: fx.trust.admins)
        try fleet.startSite(fleet.sites[1])
        #expect(eventually { fleet.sites[1].client?.status.releaseRefusal?.contains("requires 3") == true })
        #expect(try fleet.sites[1].store.curriculumVersion() == 1)
        #expect(try fleet.sites[1].store.stagedRelease() == nil)
        #expect(try ChunkStore(directory: fleet.chunkDirectory(fleet.sites[1])).all().isEmpty)

        // Site 70 trusts the release, but one chunk rotted on the hub's disk: the hub checks it before
        // serving, quarantines it and does not send it; the release is not switched to, and it
        // completes once the hub holds good bytes again (here an operator puts the file back).
        fleet.siteTrust = fx.trust
        let hubChunks = try ChunkStore(directory: fleet.dir.file("hub-chunks"))
        let victim = try chunkSet(v2).keys.sorted()[0]
        let good = try hubChunks.read(victim)
        var bad = good
        bad[bad.count / 2] ^= 0xFF
        try hubChunks.write(victim, bad)
        try fleet.startSite(fleet.sites[0])
        let site = fleet.sites[0]
        let others = Set(try chunkSet(v2).keys).subtracting([victim])
        #expect(eventually(15) { ChunkStore.held(in: fleet.chunkDirectory(site)) == others })
        usleep(1_500_000)  // past the fetch timeout: the missing chunk is asked for again, after a backoff
        #expect(try site.store.curriculumVersion() == 1)
        #expect(try site.store.stagedRelease()?.version == 2)
        #expect(!ChunkStore.held(in: fleet.chunkDirectory(site)).contains(victim))
        #expect(fleet.hub.stats.alerts.contains { $0.contains(victim) && $0.contains("damaged") })
        #expect(fleet.sites[0].client?.status.releaseRefusal == nil)  // the site never received the bad bytes
        try hubChunks.write(victim, good)
        // Within the site's backoff (capped at 20 fetch timeouts = 20 s here).
        #expect(eventually(30) { (try? site.store.curriculumVersion()) == 2 })
    }

    @Test func hubLimitsConcurrentTransfersAndSitesComeBack() throws {
        let tmp = try TemporaryDirectory(prefix: "hocvu-rel")
        defer { tmp.remove() }
        let fx = try ReleaseFixture(root: tmp.path, mediaBytes: 2 << 20)
        let fleet = try makeFleet(fx, communes: [70, 73, 4]) { r in
            r.maxConcurrentTransfers = 1
            r.retryAfterSeconds = 1
            r.transferIdleMilliseconds = 300
        }
        defer { fleet.shutdown() }
        fleet.siteFetch = { var c = $0; c.fetchBytesPerSecond = 4 << 20; c.fetchTimeoutMilliseconds = 1_000; return c }
        _ = try publisher(fleet, fx.admins[0]).publish(try fx.build(version: 2))
        for s in fleet.sites { try fleet.startSite(s) }
        for s in fleet.sites { #expect(eventually(30) { (try? s.store.curriculumVersion()) == 2 }) }
        #expect(fleet.hub.stats.transfersDeferred >= 1)
    }

    /// kill -9 of a real site process mid-transfer: nothing half-installed, and the restarted
    /// site fetches only the chunks it had not yet stored.
    @Test func resumeAfterKillNineWithoutRefetchingVerifiedChunks() throws {
        let tmp = try TemporaryDirectory(prefix: "hocvu-rel")
        defer { tmp.remove() }
        let fx = try ReleaseFixture(root: tmp.path, mediaBytes: 12 << 20)
        let fleet = try makeFleet(fx, communes: [70])
        defer { fleet.shutdown() }
        let v2 = try fx.build(version: 2)
        _ = try publisher(fleet, fx.admins[0]).publish(v2)
        let total = try chunkSet(v2).count
        let site = fleet.sites[0]

        try fx.trust.encoded().write(to: URL(fileURLWithPath: fleet.dir.file("trust.json")))
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("hocvu")
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "build the hocvu executable first")
        let process = try fleet.siteProcess(
            site,
            extra: ["--trust", fleet.dir.file("trust.json"), "--chunks", fleet.chunkDirectory(site), "--fetch-rate", "\(3 << 20)"])
        let chunkDir = fleet.chunkDirectory(site)
        #expect(eventually(20) { ChunkStore.held(in: chunkDir).count >= total / 3 })
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)

        // Not switched: the old curriculum is what learners see; the new one is staged.
        #expect(try site.store.curriculumVersion() == 1)
        #expect(try site.store.stagedRelease()?.version == 2)
        let present = try ChunkStore(directory: chunkDir).all()  // also removes any torn temporary file
        #expect(present.count < total)
        usleep(300_000)
        let servedBefore = fleet.hub.stats.chunksServed
        try fleet.startSite(site)
        #expect(eventually(20) { (try? site.store.curriculumVersion()) == 2 })
        #expect(fleet.hub.stats.chunksServed - servedBefore == total - present.count)
        let v2Chunks = Set(try chunkSet(v2).keys)
        #expect(eventually { ChunkStore.held(in: chunkDir) == v2Chunks })
    }
}

/// What learners see: only the installed release, filtered by role and province.
@Suite struct ReleaseLibraryTests {
    @Test func onlyTheInstalledReleaseAndOnlyTargetedCourses() throws {
        let tmp = try TemporaryDirectory(prefix: "hocvu-lib")
        defer { tmp.remove() }
        let fx = try ReleaseFixture(root: tmp.path, mediaBytes: 512 << 10)
        var c = SampleCurriculum.make()
        for (i, course) in c.courses.enumerated() {
            for (j, lesson) in course.lessons.enumerated() { c.courses[i].lessons[j].files = ["lessons/\(lesson.id).md"] }
        }
        c.courses[1].provinces = [4]  // attt-101 only for Cao Bằng
        try fx.writeCurriculum(c)
        let bundle = try fx.build(version: 2)
        let release = try bundle.signed()
        let manifest = try Manifest.decode(release.manifestBytes)

        let store = try NodeStore(path: tmp.file("site.sqlite"), identity: .generate())
        let chunks = try ChunkStore(directory: tmp.file("chunks"))
        let library = ReleaseLibrary(store: store, chunks: chunks)
        // Staged (being fetched) is not visible.
        try store.stageRelease(version: 2, manifest: release.manifestBytes, signatures: release.signaturesJSON)
        #expect(try library.installed() == nil)
        #expect(try library.courses(role: .nationalAssemblyDeputy, commune: 70).isEmpty)

        let source = try bundle.chunkStore()
        for ref in manifest.chunks { try chunks.write(ref.hash, try source.read(ref.hash)) }
        try store.installRelease(manifest.curriculum, manifest: release.manifestBytes, signatures: release.signaturesJSON)
        #expect(try store.stagedRelease() == nil)
        #expect(try library.courses(role: .nationalAssemblyDeputy, commune: 70).map(\.id) == ["ksn-101", "ai-qh"])  // Hà Nội
        #expect(try library.courses(role: .civilServant, commune: 1273).map(\.id) == ["ksn-101", "attt-101"])  // Cao Bằng
        let id = try store.register(1, commune: 1273)
        #expect(try library.courses(forLearner: id).map(\.id) == ["ksn-101", "attt-101"])
        #expect(try library.file("media/video.bin") == Data(contentsOf: URL(fileURLWithPath: "\(fx.source)/media/video.bin")))
        #expect(try library.file("nope") == nil)
    }
}
