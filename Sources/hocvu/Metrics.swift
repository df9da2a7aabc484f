import CoreMetrics
import Foundation
import Prometheus
import Synchronization

/// Prometheus metrics: swift-metrics counters and gauges kept in swift-prometheus's registry, named by
/// Prometheus conventions (base units, `_total` counters, `_timestamp_seconds`), each with a HELP line
/// from ``MetricCatalog``. Counters are incremented by the engines where each event happens
/// (``Node/HubMetrics``, ``Node/SiteMetrics``, created on ``factory``); the gauges here are the state
/// sampled from the daemon's status each second. No label carries a personal identifier — only
/// versions, reasons and commune codes (a bounded set of 3,321).
final class DaemonMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    /// Where the engines' event counters go (``Node/HubMetrics/init(factory:)``).
    let factory: PrometheusMetricsFactory
    let role: String

    private let gauges = Mutex<[String: CoreMetrics.Gauge]>([:])

    /// A registry of its own (the executable also hands it to `MetricsSystem.bootstrap`, so metrics
    /// created anywhere through swift-metrics land in the same exposition).
    init(role: String, version: String, registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.role = role
        self.registry = registry
        self.factory = PrometheusMetricsFactory(registry: registry)
        CoreMetrics.Gauge(label: "hocvu_build_info", dimensions: [("version", version), ("role", role)], factory: factory).record(1)
    }

    /// Sets the gauges from the report (the counters move by themselves, at each event).
    func record(_ report: DaemonStatus.Report) {
        switch report {
        case .hub(let r): record(hub: r)
        case .site(let r): record(site: r)
        }
    }

    private func record(hub r: HubStatusReport) {
        gauge("hocvu_hub_disk_full", r.diskFull.map { $0 ? 1 : 0 })
        gauge("hocvu_hub_sites_connected", r.sitesConnected.map(Double.init))
        gauge("hocvu_hub_sites_enrolled", r.sitesEnrolled.map(Double.init))
        gauge("hocvu_hub_stale_sites", r.staleSites.map(Double.init))
        gauge("hocvu_hub_ingest_changes_per_second", r.ingestChangesPerSecond)
        gauge("hocvu_hub_release", r.release.map(Double.init))
        gauge("hocvu_hub_shared_database_up", r.sharedDatabase.map { $0 == "ok" ? 1 : 0 })
        gauge("hocvu_hub_view_lag_changes", r.viewLagChanges.map(Double.init))
    }

    private func record(site r: SiteStatusReport) {
        gauge("hocvu_site_connected", r.connected.map { $0 ? 1 : 0 })
        gauge("hocvu_site_last_heard_from_hub_timestamp_seconds", r.lastHeardFromHub.map { Double($0) / 1_000 })
        gauge("hocvu_site_unacknowledged_messages", r.unacknowledgedMessages.map(Double.init))
        gauge("hocvu_site_unacknowledged_batches", r.unacknowledgedBatches.map(Double.init))
        gauge("hocvu_site_pending_changes", r.pendingChanges.map(Double.init))
        gauge("hocvu_site_quarantined_records", r.quarantinedRecords.map(Double.init))
        gauge("hocvu_site_chunks_remaining", r.chunksRemaining.map(Double.init))
        gauge("hocvu_site_clock_offset_seconds", r.clockOffsetMilliseconds.map { Double($0) / 1_000 })
        gauge("hocvu_site_installed_release", r.installedRelease.map(Double.init))
        gauge("hocvu_site_fetching_release", r.fetchingRelease.map(Double.init))
        gauge("hocvu_site_home_feed_cursor", r.homeFeedCursor.map(Double.init))
        gauge("hocvu_site_disk_full", r.diskFull.map { $0 ? 1 : 0 })
    }

    private func gauge(_ name: String, _ value: Double?) {
        guard let value else { return }
        gauges.withLock { gauges in
            let g = gauges[name] ?? CoreMetrics.Gauge(label: name, factory: factory)
            gauges[name] = g
            g.record(value)
        }
    }

    /// The text exposition, with a `# HELP` line above each metric's `# TYPE` line.
    func exposition() -> String {
        MetricCatalog.addingHelp(to: registry.emitToString())
    }
}

/// Every metric hocvu exports, with its HELP text. swift-prometheus's factory registers metrics with
/// empty help (and its registry refuses one name with two helps), so the help lives here and is
/// written into the exposition instead.
enum MetricCatalog {
    static let help: [String: String] = [
        "hocvu_build_info": "Always 1; labels name the running hocvu version and role.",
        "hocvu_hub_disk_full": "1 while the hub's disk is full (uploads are answered BUSY), else 0.",
        "hocvu_hub_sites_connected": "Sites connected now.",
        "hocvu_hub_sites_enrolled": "Sites enrolled and not revoked.",
        "hocvu_hub_stale_sites": "Enrolled sites not heard from within the stale window (3 days, StaleWindow.standard).",
        "hocvu_hub_ingest_changes_per_second": "Changes merged per second over the last minute.",
        "hocvu_hub_release": "Version of the curriculum release the hub serves (0: none).",
        "hocvu_hub_shared_database_up": "1 while the shared PostgreSQL database answers, 0 while uploads are answered BUSY (multi-hub only).",
        "hocvu_hub_view_lag_changes": "Changes other hubs appended to the shared log that this hub's view has not applied yet (multi-hub only).",
        "hocvu_hub_changes_merged_total": "Changes merged from sites.",
        "hocvu_hub_batches_merged_total": "Signed batches from sites applied (merged or set aside in quarantine).",
        "hocvu_hub_chunks_served_total": "Release chunks sent to sites.",
        "hocvu_hub_chunks_served_bytes_total": "Bytes of release chunks sent to sites.",
        "hocvu_hub_transfers_deferred_total": "Release downloads told to come back later (too many at once).",
        "hocvu_hub_messages_dropped_total": "Messages refused from peers, all reasons.",
        "hocvu_hub_alerts_total": "Alerts raised (equivocation, broken chains): a site's keys or database may be compromised.",
        "hocvu_hub_refusals_total": "Messages refused from peers, by reason (docs/protocol.md, refusal codes).",
        "hocvu_hub_site_refusals_total": "Messages refused from peers, by commune code (- if not enrolled) and reason.",
        "hocvu_site_connected": "1 while connected to the hub, else 0.",
        "hocvu_site_last_heard_from_hub_timestamp_seconds": "When the hub last answered, in seconds since the epoch.",
        "hocvu_site_unacknowledged_messages": "Messages sent and not yet acknowledged by the hub.",
        "hocvu_site_unacknowledged_batches": "Sealed batches the hub has not acknowledged.",
        "hocvu_site_pending_changes": "Local changes not yet sealed into a batch.",
        "hocvu_site_quarantined_records": "Records held in quarantine (e.g. stamped too far ahead).",
        "hocvu_site_chunks_remaining": "Chunks left to fetch of the release being downloaded.",
        "hocvu_site_clock_offset_seconds": "This PC's clock minus the hub's, in seconds.",
        "hocvu_site_installed_release": "Version of the installed curriculum release (0: none).",
        "hocvu_site_fetching_release": "Version of the release being downloaded.",
        "hocvu_site_home_feed_cursor": "Position reached in the hub's home feed.",
        "hocvu_site_disk_full": "1 while the site's disk is full (sync or fetch paused), else 0.",
        "hocvu_site_uploads_sent_total": "Uploads sent to the hub.",
        "hocvu_site_chunks_fetched_total": "Release chunks fetched from the hub.",
        "hocvu_site_chunks_fetched_bytes_total": "Bytes of release chunks fetched from the hub.",
        "hocvu_site_refusals_total": "Messages from the hub dropped, by reason.",
    ]

    /// Inserts `# HELP name text` above each `# TYPE name …` line that has no HELP line yet.
    static func addingHelp(to exposition: String) -> String {
        var out = ""
        out.reserveCapacity(exposition.utf8.count + 2_048)
        var previous = Substring("")
        for line in exposition.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# TYPE "), let name = line.dropFirst(7).split(separator: " ").first,
                !previous.hasPrefix("# HELP \(name) "), let help = help[String(name)]
            {
                out += "# HELP \(name) \(help)\n"
            }
            out += line
            out += "\n"
            previous = line
        }
        if out.hasSuffix("\n\n") { out.removeLast() }
        return out
    }
}
