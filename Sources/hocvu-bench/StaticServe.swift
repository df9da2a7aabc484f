import ArgumentParser
import Foundation
import Hummingbird
import Logging

/// The dashboard benchmark's raw baseline (BENCHMARKS.md, "Dashboard"): the same HTTP server
/// (Hummingbird, same version and settings) answering with a file's bytes held in memory, so the
/// difference to a dashboard page is the page's own work.
extension HocVuBench {
    struct ServeStatic: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "serve-static",
            abstract: "Serve each file given at /NAME from memory on 127.0.0.1:PORT (until SIGINT/SIGTERM).")

        @Option(help: "Loopback port.") var port = 9490
        @Argument(help: "Files to serve, each at /its-file-name.") var files: [String]

        func run() async throws {
            let router = Router()
            for path in files {
                let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
                let name = (path as NSString).lastPathComponent
                router.get(RouterPath(stringLiteral: "/" + name)) { _, _ in
                    Response(
                        status: .ok,
                        headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
                }
            }
            var logger = Logger(label: "hocvu-bench.static")
            logger.logLevel = .warning
            let app = Application(
                router: router, configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: nil), logger: logger)
            try await app.runService()
        }
    }
}
