import CoreMetrics
import Foundation
import Logging
import Prometheus

/// Prometheus metrics on a loopback port: swift-metrics gauges and counters, exported by
/// swift-prometheus's registry. The numbers come from the daemon's status (facts, not request
/// outcomes); no label carries a personal identifier — only counts, versions and commune-free totals.
final class DaemonMetrics: @unchecked Sendable {
    let registry = PrometheusCollectorRegistry()
    private var counters: [String: (CoreMetrics.Counter, Int64)] = [:]
    private var gauges: [String: CoreMetrics.Gauge] = [:]
    private let lock = NSLock()
    let role: String

    init(role: String) {
        self.role = role
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }

    /// Keys of the status that only ever grow are counters; the rest are gauges.
    static let counterKeys: Set<String> = [
        "changes_merged", "chunks_served", "transfers_deferred", "messages_dropped", "uploads_sent", "chunks_fetched",
    ]

    func update(from status: [String: Any]) {
        lock.lock()
        defer { lock.unlock() }
        for (key, value) in status {
            // Refusals: exact counters labelled by reason (and by commune: a bounded set of 3,321).
            if key == "refusals", let byReason = value as? [String: Int] {
                for (reason, n) in byReason { bump("hocvu_\(role)_refusals_total", [("reason", reason)], n) }
                continue
            }
            if key == "refusals_by_site", let bySite = value as? [String: [String: Int]] {
                for (commune, byReason) in bySite {
                    for (reason, n) in byReason {
                        bump("hocvu_\(role)_site_refusals_total", [("commune", commune), ("reason", reason)], n)
                    }
                }
                continue
            }
            let number: Double
            switch value {
            case let b as Bool: number = b ? 1 : 0
            case let i as Int: number = Double(i)
            case let i as Int64: number = Double(i)
            case let u as UInt64: number = Double(u)
            case let d as Double: number = d
            default: continue
            }
            if Self.counterKeys.contains(key) {
                let name = "hocvu_\(role)_\(key)_total"
                let (counter, last) = counters[name] ?? (CoreMetrics.Counter(label: name), 0)
                let now = Int64(number)
                if now > last { counter.increment(by: now - last) }
                counters[name] = (counter, max(now, last))
            } else {
                let name = "hocvu_\(role)_\(key)"
                let gauge = gauges[name] ?? CoreMetrics.Gauge(label: name)
                gauge.record(number)
                gauges[name] = gauge
            }
        }
    }

    /// Moves a labelled counter up to `total` (counters only grow; the status holds totals).
    private func bump(_ name: String, _ dimensions: [(String, String)], _ total: Int) {
        let key = name + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
        let (counter, last) = counters[key] ?? (CoreMetrics.Counter(label: name, dimensions: dimensions), 0)
        if Int64(total) > last { counter.increment(by: Int64(total) - last) }
        counters[key] = (counter, max(Int64(total), last))
    }

    func exposition() -> [UInt8] {
        var buffer = [UInt8]()
        registry.emit(into: &buffer)
        return buffer
    }
}

/// A loopback-only responder for Prometheus scrapes: `GET /metrics` and nothing else. Deliberately
/// tiny (one thread, one connection at a time, 1 s timeouts) — a full HTTP server would be the only
/// network-facing HTTP code in the daemon and is not needed for a local scraper.
struct MetricsListener {
    /// Starts serving on `address` ("127.0.0.1:9464"). Returns the port bound.
    static func start(address: String, metrics: DaemonMetrics, logger: Logger) throws -> Int {
        let parts = address.split(separator: ":")
        guard parts.count == 2, parts[0] == "127.0.0.1", let port = UInt16(parts[1]) else { throw Failure("metrics listen address \(address) is not loopback (127.0.0.1:PORT); metrics are never exposed beyond the host") }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0, listen(fd, 16) == 0 else {
            let why = String(cString: strerror(errno))
            close(fd)
            throw Failure("cannot listen for metrics on \(address): \(why); choose another port in [metrics] listen (or --metrics), or off")
        }
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        let thread = Thread {
            while true {
                let client = accept(fd, nil, nil)
                guard client >= 0 else { continue }
                var tv = timeval(tv_sec: 1, tv_usec: 0)
                setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                var request = [UInt8](repeating: 0, count: 2_048)
                let n = recv(client, &request, request.count, 0)
                let line = n > 0 ? String(decoding: request[0..<n], as: UTF8.self).split(separator: "\r\n").first ?? "" : ""
                let body: [UInt8]
                let head: String
                if line.hasPrefix("GET /metrics ") || line == "GET /metrics" {
                    body = metrics.exposition()
                    head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                } else {
                    body = Array("only GET /metrics is served here\n".utf8)
                    head = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
                }
                let response = Array((head + "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n").utf8) + body
                _ = response.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                close(client)
            }
        }
        thread.name = "hocvu-metrics"
        thread.start()
        logger.info("Metrics on loopback", metadata: ["endpoint": "http://\(address)/metrics"])
        return Int(UInt16(bigEndian: bound.sin_port))
    }
}
