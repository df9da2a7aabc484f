import Foundation
@testable import HubPostgres
import Merge
import Model
import Node
import Sodium
import Store
import TestSupport
import Testing

/// Two hub engines in this process, each with its own SQLite view, on one shared database; sites
/// over CURVE on tcp loopback, each told both hubs.
final class TwoHubs {
    let dir: TemporaryDirectory
    let database: String
    let hubKeys = BoxKeyPair.generate()
    let hubIdentity = SigningKeyPair.generate()
    var hubs: [HubServer] = []
    var views: [NodeStore] = []
    var endpoints: [String] = []
    let admin: PostgresHubLog
    var sites: [(commune: Int, store: NodeStore, transport: BoxKeyPair, client: SiteClient?)] = []

    init(sites n: Int) throws {
        dir = try TemporaryDirectory(prefix: "hocvu-2hubs")
        database = try TestPostgres.freshDatabase()
        admin = TestPostgres.log(database: database, hub: "admin")
        for name in ["a", "b"] {
            let view = try NodeStore(path: dir.file("hub-\(name).sqlite"), identity: hubIdentity)
            try view.installCurriculum(SampleCurriculum.make())
            var config = HubServer.Configuration(bind: "tcp://127.0.0.1:*", transportKeys: hubKeys)
            config.identity = hubIdentity
            config.sharedLog = TestPostgres.log(database: database, hub: name)
            config.followIntervalMilliseconds = 100
            let hub = HubServer(store: view, configuration: config, logger: quietLogger)
            endpoints.append(try hub.start())
            hubs.append(hub)
            views.append(view)
        }
        for i in 0..<n {
            let identity = SigningKeyPair.generate()
            let transport = BoxKeyPair.generate()
            let store = try siteStore(dir, "site\(i)", key: identity)
            try admin.enroll(
                communeCode: testCommunes[i], identityKey: identity.publicKey, transportKey: transport.publicKey, at: NodeStore.systemNow())
            sites.append((testCommunes[i], store, transport, nil))
        }
        // Both hubs have read the enrollments (they follow the database every 100 ms here).
        guard try eventually(10, { try views.allSatisfy { try $0.enrollments().count == n } }) else {
            throw SharedLogError("the hubs never saw the enrollments")
        }
    }

    /// Site `i`, told the hubs in `order` (indices into ``endpoints``).
    func startSite(_ i: Int, order: [Int]) throws {
        var config = SiteClient.Configuration(hubEndpoint: endpoints[order[0]], hubTransportKey: hubKeys.publicKey, transportKeys: sites[i].transport)
        config.hubEndpoints = order.map { endpoints[$0] }
        config.failoverAfterMilliseconds = 500
        config.reconnectBase = 100
        config.hubIdentityKey = hubIdentity.publicKey
        let client = try SiteClient(store: sites[i].store, configuration: config, logger: quietLogger)
        try client.start()
        sites[i].client = client
    }

    /// True once the shared log holds everything every site sealed.
    func logHasAll() throws -> Bool {
        let heads = try admin.heads()
        return try sites.allSatisfy { s in
            try s.store.sealPending()
            return try s.store.versionVector().restricted(to: s.store.node).entries.allSatisfy { heads[$0.key] >= $0.value }
        }
    }

    /// A hub on SQLite alone that took every site's batches directly: what the views must equal.
    func reference() throws -> NodeStore {
        let r = try NodeStore(path: dir.file("reference-\(UInt32.random(in: 0...UInt32.max)).sqlite"), identity: .generate())
        try r.installCurriculum(SampleCurriculum.make())
        for s in sites { _ = try r.apply(try s.store.ownBatches(after: VersionVector(), maxBytes: .max)) }
        return r
    }

    func shutdown() {
        sites.forEach { $0.client?.stop() }
        hubs.forEach { $0.stop() }
        admin.close()
        dir.remove()
    }
}

extension HubPostgresTests {
    @Test("two hubs on one database: sites on either; both views reach the same state as one SQLite hub; records come home across hubs")
    func twoHubsConverge() throws {
        let f = try TwoHubs(sites: 4)
        defer { f.shutdown() }
        for i in 0..<4 { try f.sites[i].store.recordResults(commune: f.sites[i].commune, first: i * 100, count: 12) }
        // A learner of site 1's commune trained at site 0: site 0 uploads to hub A, site 1 listens to hub B.
        try f.sites[0].store.recordResults(commune: f.sites[1].commune, first: 900, count: 1)
        for i in 0..<4 { try f.startSite(i, order: i % 2 == 0 ? [0, 1] : [1, 0]) }
        #expect(try eventually(120) { try f.logHasAll() })
        let heads = try f.admin.heads()
        for view in f.views {
            #expect(try eventually(60) { try view.versionVector() == heads })
        }
        let reference = try f.reference()
        #expect(try f.views[0].stateDigest() == reference.stateDigest())
        #expect(try f.views[1].stateDigest() == reference.stateDigest())
        #expect(try f.views[0].nationalReport().national == reference.nationalReport().national)
        #expect(try f.views[1].nationalReport().national == reference.nationalReport().national)
        #expect(try reference.nationalReport().national.learners == 4 * 12 + 1)
        // The learner came home to site 1 through hub B, which only followed hub A's log.
        #expect(try eventually(60) { try f.sites[1].store.stateDigestOfLearners() == 13 })
        // Nothing refused, nothing duplicated.
        let counts = try f.admin.counts()
        #expect(counts.quarantinedOrigins == 0)
        #expect(counts.changes == f.sites.reduce(0) { $0 + Int((try? $1.store.versionVector().restricted(to: $1.store.node).entries.values.reduce(0, +)) ?? 0) })
        #expect(f.hubs.allSatisfy { $0.stats.refusals.isEmpty })
    }

    @Test("a revocation made in the shared database is enforced by every hub within a second")
    func revocationReachesEveryHub() throws {
        let f = try TwoHubs(sites: 2)
        defer { f.shutdown() }
        try f.startSite(0, order: [0, 1])
        try f.startSite(1, order: [1, 0])
        #expect(try eventually(10) { f.sites[0].client!.status.hubHas.entries.isEmpty == false || f.hubs[0].stats.openSessions > 0 })
        #expect(try eventually(10) { f.hubs[0].stats.openSessions == 1 && f.hubs[1].stats.openSessions == 1 })
        try f.admin.revoke(communeCode: f.sites[0].commune, at: NodeStore.systemNow())
        try f.admin.revoke(communeCode: f.sites[1].commune, at: NodeStore.systemNow())
        let revokedAt = Date()
        #expect(try eventually(5) { f.sites.allSatisfy { $0.client!.status.refused != nil } })
        // Each hub re-reads enrollments every 100 ms here (250 ms by default); the rest is the refusal
        // reaching the site, which a fully loaded 2-core test run slows; the bound leaves room for that.
        #expect(Date().timeIntervalSince(revokedAt) < 2.5)
        // Each hub's view mirrors the shared enrollments (its report and `hub sites` list them).
        #expect(try f.views.allSatisfy { try $0.enrollments().allSatisfy(\.isRevoked) })
    }

    @Test("a hub that cannot reach its database acknowledges nothing and says so in its status (the process test shows it taking uploads again)")
    func databaseUnreachableStopsAcknowledging() throws {
        let f = try TwoHubs(sites: 1)
        defer { f.shutdown() }
        // Hub C: the same keys, a database address where nothing listens.
        let view = try NodeStore(path: f.dir.file("hub-c.sqlite"), identity: f.hubIdentity)
        try view.installCurriculum(SampleCurriculum.make())
        try view.enroll(communeCode: f.sites[0].commune, identityKey: f.sites[0].store.node.bytes, transportKey: f.sites[0].transport.publicKey)
        var config = HubServer.Configuration(bind: "tcp://127.0.0.1:*", transportKeys: f.hubKeys)
        config.identity = f.hubIdentity
        config.sharedLog = PostgresHubLog(
            .init(host: "127.0.0.1", port: 1, database: "nowhere", user: "x", tls: "disable", timeoutSeconds: 1, hubName: "c"),
            logger: quietLogger)
        config.databaseRetrySeconds = 1
        let c = HubServer(store: view, configuration: config, logger: quietLogger)
        let endpoint = try c.start()
        defer { c.stop() }
        try f.sites[0].store.recordResults(commune: f.sites[0].commune, first: 0, count: 5)
        var sc = SiteClient.Configuration(hubEndpoint: endpoint, hubTransportKey: f.hubKeys.publicKey, transportKeys: f.sites[0].transport)
        sc.reconnectBase = 100
        let site = try SiteClient(store: f.sites[0].store, configuration: sc, logger: quietLogger)
        try site.start()
        defer { site.stop() }
        #expect(try eventually(10) { c.stats.sharedLogUnavailable != nil })
        #expect(c.stats.sharedLogUnavailable?.contains("127.0.0.1:1/nowhere") == true)
        Thread.sleep(forTimeInterval: 2)
        // Nothing was acknowledged or merged into its view, and the site still holds it all.
        #expect(site.status.hubHas.entries.isEmpty)
        #expect(try view.versionVector().restricted(to: f.sites[0].store.node).entries.isEmpty)
        #expect(c.stats.changesMerged == 0)
        #expect(try f.admin.heads().entries.isEmpty)
    }
}

extension NodeStore {
    /// Learners this store holds (through its national report's learner count).
    func stateDigestOfLearners() throws -> Int { try count("learner") }
    func count(_ table: String) throws -> Int { try attemptsCountForTests(table) }
}
