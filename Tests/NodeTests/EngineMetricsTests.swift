import Foundation
import MetricsTestKit
import Node
import Testing
import Transport
import Wire

/// The engines' counters move where each event happens (not sampled from totals afterwards), with
/// the same numbers as the engines' own stats, and with bounded labels: a reason, a commune code.
@Suite("Engine metrics counted at the event")
struct EngineMetricsTests {
    @Test("a refusal (per reason and commune), a merge and an upload each move their counter, equal to the stats")
    func countersAtEvents() throws {
        let hubMetrics = TestMetrics()
        let siteMetrics = TestMetrics()
        let fleet = try Fleet(communes: [70], hub: { $0.metrics = HubMetrics(factory: hubMetrics) })
        defer { fleet.shutdown() }
        fleet.siteFetch = { var c = $0; c.metrics = SiteMetrics(factory: siteMetrics); return c }

        // BATCHES before HELLO from an enrolled site: refused, counted for that commune and reason.
        let a = fleet.sites[0]
        let context = try ZMQContext()
        let raw = try rawClient(fleet, a, context: context)
        _ = try raw.send(WireCodec.encode(.batches([]), id: 1))
        #expect(try eventually(5) {
            hubMetrics.counterTotal(label: "hocvu_hub_site_refusals_total", dimensions: [("commune", "70"), ("reason", "batches_before_hello")]) == 1
        })
        raw.close()
        #expect(hubMetrics.counterTotal(label: "hocvu_hub_refusals_total", dimensions: [("reason", "batches_before_hello")]) == 1)
        #expect(hubMetrics.counterTotal(label: "hocvu_hub_messages_dropped_total") == 1)

        try recordResults(a.store, commune: 70, first: 0, count: 20)
        try fleet.startSite(a)
        #expect(try eventually { try fleet.hubHasAll(of: a) })
        let stats = fleet.hub.stats
        #expect(stats.changesMerged > 0)
        #expect(hubMetrics.counterTotal(label: "hocvu_hub_changes_merged_total") == Int64(stats.changesMerged))
        #expect(hubMetrics.counterTotal(label: "hocvu_hub_batches_merged_total") == Int64(stats.batchesApplied))
        #expect(try eventually(3) { siteMetrics.counterTotal(label: "hocvu_site_uploads_sent_total") == Int64(a.client!.status.uploadsSent) })
        #expect(siteMetrics.counterTotal(label: "hocvu_site_uploads_sent_total") > 0)
        // No label names a learner: every hub counter's labels are among reason and commune.
        for counter in hubMetrics.counters { #expect(counter.dimensions.allSatisfy { ["reason", "commune"].contains($0.0) }) }
    }
}
