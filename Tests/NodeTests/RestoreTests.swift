import Foundation
import Merge
import Node
import Sodium
import Store
import TestSupport
import Testing
import Transport

/// Issue 10, item 2: a site database restored from a backup is behind the history the hub holds.
/// Before: with `hocvu site restored` the backup's unsealed changes were sealed under the old epoch in
/// other batches than the lost copy had uploaded (a false equivocation alarm, the origin quarantined,
/// changes lost); without it, new events under sequence numbers the hub already held were never sent.
@Suite("A site restored from a backup loses nothing and raises no alarm", .serialized)
struct RestoreTests {
    @Test("restored with or without `hocvu site restored`: everything reaches the hub once, no equivocation", arguments: [false, true])
    func restore(withCommand: Bool) throws {
        let fleet = try Fleet(communes: [70])
        defer { fleet.shutdown() }
        let s = fleet.sites[0]
        try recordResults(s.store, commune: 70, first: 0, count: 3)
        try fleet.startSite(s)
        #expect(try eventually { try fleet.hubStore.count("learner") == 3 })
        s.client?.stop()

        // The backup holds sealed batches and changes not sealed yet.
        try recordResults(s.store, commune: 70, first: 3, count: 2)
        let backup = fleet.dir.file("backup.sqlite")
        try sqlite(s.store.path, ".backup '\(backup)'")

        // The lost copy goes on: seals in its own way, uploads, records more.
        try fleet.startSite(s)
        try recordResults(s.store, commune: 70, first: 5, count: 2)
        #expect(try eventually { try fleet.hubStore.count("learner") == 7 })
        s.client?.stop()

        // The disk dies; the backup comes back, and learners keep coming.
        let restored = try NodeStore(path: backup, identity: s.identity)
        if withCommand { try restored.rotateEpoch() }
        try recordResults(restored.store, commune: 70, first: 7, count: 2)
        var config = SiteClient.Configuration(
            hubEndpoint: fleet.endpoint, hubTransportKey: fleet.hubKeys.publicKey, transportKeys: s.transport)
        config.reconnectBase = 100
        config.hubIdentityKey = fleet.hubIdentity.publicKey
        let client = try SiteClient(store: restored, configuration: config, logger: quietLogger)
        try client.start()
        defer { client.stop() }

        #expect(try eventually { try fleet.hubStore.count("learner") == 9 }, "results recorded after the restore never reached the hub")
        #expect(try eventually { try restored.facts(acknowledged: client.status.hubHas).unacknowledgedBatches == 0 })
        #expect(try fleet.hubStore.count("attempt") == 9, "an attempt was counted twice")
        #expect(fleet.hub.stats.alerts.isEmpty, "a false alarm: \(fleet.hub.stats.alerts)")
        #expect(try fleet.hubStore.quarantinedOrigins().isEmpty)
        #expect(fleet.hub.stats.dropped["equivocation", default: 0] == 0)
        #expect(client.status.restoreDetected == !withCommand)
        #expect(try fleet.hubStore.nationalReport().national.learners == 9)
    }
}

extension NodeStore {
    /// Lets a test write `store.store` where a `Fleet.Site` would be.
    var store: NodeStore { self }
}
