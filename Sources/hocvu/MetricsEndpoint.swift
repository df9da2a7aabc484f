import Hummingbird
import Logging
import ServiceLifecycle

/// The Prometheus endpoint: `GET /metrics` on a loopback address, nothing else (404). A Hummingbird
/// application, which is itself a `Service` in the daemon's group.
enum MetricsEndpoint {
    /// The port of a loopback address ("127.0.0.1:9464"); anything else is refused.
    static func loopbackPort(_ address: String) throws -> Int {
        let parts = address.split(separator: ":")
        guard parts.count == 2, parts[0] == "127.0.0.1", let port = UInt16(parts[1]) else {
            throw Failure(
                "metrics listen address \(address) is not loopback (127.0.0.1:PORT); metrics are never exposed beyond the host: fix [metrics] listen (or --metrics)")
        }
        return Int(port)
    }

    /// - Parameter bound: called once the listener is bound (READY=1 waits for it).
    static func application(
        address: String, metrics: DaemonMetrics, logger: Logger, bound: @escaping @Sendable () -> Void = {}
    ) throws -> any Service {
        let port = try loopbackPort(address)
        let router = Router()
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: metrics.exposition())))
        }
        return Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: nil),
            onServerRunning: { _ in
                logger.info("Metrics on loopback", metadata: ["endpoint": "http://\(address)/metrics"])
                bound()
            },
            logger: logger)
    }
}
