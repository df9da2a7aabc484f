import Foundation
import Node
import Store
import Testing
import Transport
import Release
import Sodium
import TestSupport

/// Issue 10, items 7 and 8: health from facts — any message counts, not only uploads — and network
/// trouble that is seen.
@Suite("Site health at the hub and the site comes from any message", .serialized)
struct HealthTests {
    @Test("an idle connected site stays heard and connected on both sides; a stopped one drops out of 'connected'")
    func idleSiteIsHeard() throws {
        let fleet = try Fleet(communes: [70], hub: { c in
            c.livenessWindowMilliseconds = 1_000
            c.heardPersistIntervalMilliseconds = 200
        })
        defer { fleet.shutdown() }
        fleet.siteFetch = { var c = $0; c.keepaliveMilliseconds = 200; return c }
        let s = fleet.sites[0]
        try fleet.startSite(s)  // nothing to upload, ever
        #expect(try eventually(5) { fleet.hub.stats.connectedCommunes == [70] })
        #expect(try eventually(5) { try fleet.hubStore.enrollments().first?.lastHeardAt != nil },
                "a site that only fetched and idled was never heard")
        let first = try #require(try fleet.hubStore.enrollments().first?.lastHeardAt)
        Thread.sleep(forTimeInterval: 1.2)
        #expect(try fleet.hubStore.enrollments().first!.lastHeardAt! > first, "last heard froze while connected")
        let siteHeard = try #require(s.client?.status.lastHeardFromHub)
        #expect(NodeStore.systemNow() - siteHeard < 1_000, "the site's own last heard froze while idle")
        #expect(try fleet.hubStore.count("batch") == 0)
        #expect(try fleet.hubStore.nationalReport().communes.first { $0.code == 70 }?.stale == false)

        s.client?.stop()
        #expect(try eventually(5) { fleet.hub.stats.connectedCommunes.isEmpty }, "'sites connected' never went down")
    }

    @Test("a refused connection is counted and logged, not silent")
    func refusedConnection() throws {
        let fleet = try Fleet(communes: [70])
        defer { fleet.shutdown() }
        // A port nobody listens on: bind and close one to find it.
        let context = try ZMQContext()
        let probe = try ZMQSocket(context, .router)
        let dead = try probe.bind("tcp://127.0.0.1:*")
        probe.close()
        let s = fleet.sites[0]
        var config = SiteClient.Configuration(hubEndpoint: dead, hubTransportKey: fleet.hubKeys.publicKey, transportKeys: s.transport)
        config.reconnectBase = 100
        let client = try SiteClient(store: s.store, configuration: config, logger: quietLogger)
        try client.start()
        defer { client.stop() }
        #expect(try eventually(5) { client.status.connectFailures > 0 })
        #expect(!client.status.connected && !client.hasFinished)
    }
}

@Suite("Publishing to a hub that is not there says so", .serialized)
struct PublishUnreachableTests {
    @Test("publishing to a port nobody listens on fails fast as unreachable, not as a key problem after a minute")
    func unreachableHub() throws {
        let tmp = try TemporaryDirectory(prefix: "hocvu-pub-dead")
        defer { tmp.remove() }
        let fx = try ReleaseFixture(root: tmp.path, mediaBytes: 1 << 16)
        let context = try ZMQContext()
        let probe = try ZMQSocket(context, .router)
        let dead = try probe.bind("tcp://127.0.0.1:*")
        probe.close()
        var p = ReleasePublisher(
            hubEndpoint: dead, hubTransportKey: BoxKeyPair.generate().publicKey, transportKeys: fx.admins[0].transport,
            logger: quietLogger)
        p.idleTimeoutSeconds = 60
        let started = Date()
        #expect(throws: NodeError.self) { _ = try p.publish(try fx.build(version: 1)) }
        do { _ = try p.publish(try fx.build(version: 1)) } catch let f as NodeError {
            if case .unreachable = f {} else { Issue.record("reported as \(f)") }
        }
        #expect(Date().timeIntervalSince(started) < 30)
    }
}
