import Foundation
import Testing

@testable import Node
@testable import hocvu

/// The status file's typed form and the metrics drawn from it, without a daemon.
struct DaemonStatusTests {
    static let hub = HubStatusReport(
        diskFull: false, sitesConnected: 2, sitesEnrolled: 3, staleSites: 1, changesMerged: 40,
        ingestChangesPerSecond: 1.5, release: 7, chunksServed: 5, chunkBytesServed: 5_000, transfersDeferred: 1,
        messagesDropped: 2, alerts: 1, refusals: ["malformed": 2], refusalsBySite: ["70": ["malformed": 2]])
    static let site = SiteStatusReport(
        connected: true, lastHeardFromHub: 1_700_000_000_500, unacknowledgedMessages: 0, unacknowledgedBatches: 1,
        pendingChanges: 3, quarantinedRecords: 0, uploadsSent: 4, chunksRemaining: 0, chunksFetched: 9,
        chunkBytesFetched: 9_000, clockOffsetMilliseconds: -1_500, installedRelease: 7, diskFull: false,
        refusals: ["bad_signature": 1])

    @Test func statusFileKeepsItsKeysAndReadsBack() throws {
        let status = DaemonStatus(updatedAt: 1_700_000_001_000, pid: 42, report: .hub(Self.hub))
        let data = try status.encoded()
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["role"] as? String == "hub")
        #expect(object["sites_connected"] as? Int == 2)
        #expect(object["updated_at"] as? Int == 1_700_000_001_000)
        #expect((object["refusals_by_site"] as? [String: [String: Int]])?["70"]?["malformed"] == 2)
        #expect(try DaemonStatus.decode(data) == status)

        let site = DaemonStatus(updatedAt: 1, pid: nil, report: .site(Self.site))
        #expect(try DaemonStatus.decode(try site.encoded()) == site)
        #expect(String(decoding: try site.encoded(), as: UTF8.self).contains("\"clock_offset_ms\":-1500"))
    }

    @Test func aPartialStatusFileReadsAndAnUnknownRoleDoesNot() throws {
        let partial = try DaemonStatus.decode(Data(#"{"role":"site","pid":7,"updated_at":5}"#.utf8))
        #expect(partial == DaemonStatus(updatedAt: 5, pid: 7, report: .site(SiteStatusReport())))
        #expect(throws: (any Error).self) { try DaemonStatus.decode(Data(#"{"role":"relay","updated_at":5}"#.utf8)) }
    }

    @Test func everyMetricHasHelpAndConventionalNames() {
        let metrics = DaemonMetrics(role: "hub", version: "9.9.9")
        metrics.record(.hub(Self.hub))
        // The engines' event counters, created in the daemon's registry as `hub run` does.
        let hubEvents = HubMetrics(factory: metrics.factory)
        hubEvents.refused("malformed", commune: 70, count: 2)
        hubEvents.alerted()
        let siteMetrics = DaemonMetrics(role: "site", version: "9.9.9")
        siteMetrics.record(.site(Self.site))
        let siteEvents = SiteMetrics(factory: siteMetrics.factory)
        siteEvents.fetched(chunkBytes: 9_000)
        siteEvents.dropped("bad_signature")
        for text in [metrics.exposition(), siteMetrics.exposition()] {
            let lines = text.split(separator: "\n")
            for (i, line) in lines.enumerated() where line.hasPrefix("# TYPE ") {
                let name = line.split(separator: " ")[2]
                #expect(i > 0 && lines[i - 1].hasPrefix("# HELP \(name) "), "no HELP line for \(name)")
                if line.hasSuffix(" counter") { #expect(name.hasSuffix("_total")) }
                #expect(!name.hasSuffix("_ms") && !name.hasSuffix("_alerts"))
            }
            #expect(text.contains("hocvu_build_info{"))
        }
        let hub = metrics.exposition()
        #expect(hub.contains("hocvu_hub_alerts_total 1"))
        #expect(hub.contains(#"hocvu_hub_refusals_total{reason="malformed"} 2"#))
        #expect(hub.contains(#"hocvu_hub_site_refusals_total{commune="70",reason="malformed"} 2"#))
        #expect(hub.contains("hocvu_hub_changes_merged_total 0"))  // created with the engine, before any event
        let site = siteMetrics.exposition()
        #expect(site.contains("hocvu_site_clock_offset_seconds -1.5"))
        #expect(site.contains("hocvu_site_last_heard_from_hub_timestamp_seconds 1700000000.5"))
        #expect(site.contains("hocvu_site_chunks_fetched_bytes_total 9000"))
    }

    /// Counters move at the event in the engine; sampling the status each second must not move them again.
    @Test func countersMoveAtEventsNotFromTheSampledStatus() {
        let metrics = DaemonMetrics(role: "hub", version: "0")
        let events = HubMetrics(factory: metrics.factory)
        var report = Self.hub
        report.changesMerged = 55
        metrics.record(.hub(report))
        #expect(metrics.exposition().contains("hocvu_hub_changes_merged_total 0"))
        events.merged(batches: 2, changes: 55)
        metrics.record(.hub(report))
        #expect(metrics.exposition().contains("hocvu_hub_changes_merged_total 55"))
        #expect(metrics.exposition().contains("hocvu_hub_batches_merged_total 2"))
        #expect(metrics.exposition().contains("hocvu_hub_sites_connected 2"))  // gauges stay sampled
    }

    @Test("the status file is rewritten when the report changes, and otherwise only when it ages")
    func statusFileIsRewrittenOnChangeOrAge() {
        var policy = StatusFilePolicy(refreshMilliseconds: 5_000)
        let a = DaemonStatus.Report.site(Self.site)
        var changed = Self.site
        changed.pendingChanges = 4
        #expect(policy.shouldWrite(a, now: 1_000))  // nothing written yet
        policy.wrote(a, at: 1_000)
        #expect(!policy.shouldWrite(a, now: 2_000))  // the same report, fresh enough
        #expect(!policy.shouldWrite(a, now: 5_999))
        #expect(policy.shouldWrite(a, now: 6_000))  // aged: a live daemon must not look stale
        #expect(policy.shouldWrite(.site(changed), now: 2_000))  // changed: at once
        #expect(policy.shouldWrite(a, now: 500))  // the clock went back
    }
}
