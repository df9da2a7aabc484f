public import CoreMetrics

/// The hub engine's event counters (swift-metrics), incremented where each event happens — a
/// refusal, a merge, a chunk sent — not derived from totals afterwards. Names follow Prometheus
/// conventions (docs/operations.md, "Metrics"); labels are bounded: a reason (``DropReason`` or a
/// store's batch code) and, for per-site refusals, the commune code (3,321 at most, `-` for a peer
/// that is not an enrolled site). Never a learner.
public struct HubMetrics: Sendable {
    let factory: any MetricsFactory
    let changesMerged: Counter
    let batchesMerged: Counter
    let messagesDropped: Counter
    let alerts: Counter
    let chunksServed: Counter
    let chunkBytesServed: Counter
    let transfersDeferred: Counter

    /// - Parameter factory: where the counters live (the executable's Prometheus registry; by
    ///   default the process's bootstrapped `MetricsSystem`, a no-op until bootstrapped).
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        changesMerged = Counter(label: "hocvu_hub_changes_merged_total", factory: factory)
        batchesMerged = Counter(label: "hocvu_hub_batches_merged_total", factory: factory)
        messagesDropped = Counter(label: "hocvu_hub_messages_dropped_total", factory: factory)
        alerts = Counter(label: "hocvu_hub_alerts_total", factory: factory)
        chunksServed = Counter(label: "hocvu_hub_chunks_served_total", factory: factory)
        chunkBytesServed = Counter(label: "hocvu_hub_chunks_served_bytes_total", factory: factory)
        transfersDeferred = Counter(label: "hocvu_hub_transfers_deferred_total", factory: factory)
    }

    /// `n` messages, batches or handshakes refused for `reason` from `commune` (nil: not an enrolled site).
    func refused(_ reason: String, commune: Int?, count n: Int = 1) {
        messagesDropped.increment(by: n)
        Counter(label: "hocvu_hub_refusals_total", dimensions: [("reason", reason)], factory: factory).increment(by: n)
        Counter(
            label: "hocvu_hub_site_refusals_total", dimensions: [("commune", commune.map { "\($0)" } ?? "-"), ("reason", reason)],
            factory: factory
        ).increment(by: n)
    }

    func merged(batches: Int, changes: Int) {
        batchesMerged.increment(by: batches)
        changesMerged.increment(by: changes)
    }

    func alerted(_ n: Int = 1) { if n > 0 { alerts.increment(by: n) } }

    func deferredTransfer() { transfersDeferred.increment() }

    func served(chunkBytes: Int) {
        chunksServed.increment()
        chunkBytesServed.increment(by: chunkBytes)
    }
}

/// The site engine's event counters, incremented where each event happens (see ``HubMetrics``).
public struct SiteMetrics: Sendable {
    let factory: any MetricsFactory
    let uploadsSent: Counter
    let chunksFetched: Counter
    let chunkBytesFetched: Counter

    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        uploadsSent = Counter(label: "hocvu_site_uploads_sent_total", factory: factory)
        chunksFetched = Counter(label: "hocvu_site_chunks_fetched_total", factory: factory)
        chunkBytesFetched = Counter(label: "hocvu_site_chunks_fetched_bytes_total", factory: factory)
    }

    /// A message from the hub dropped for `reason` (a bounded ``DropReason``-style code).
    func dropped(_ reason: String) {
        Counter(label: "hocvu_site_refusals_total", dimensions: [("reason", reason)], factory: factory).increment()
    }

    func uploaded() { uploadsSent.increment() }

    func fetched(chunkBytes: Int) {
        chunksFetched.increment()
        chunkBytesFetched.increment(by: chunkBytes)
    }
}
