import Foundation
import HubPostgres
import Logging
import Merge
import Model
import NIOCore
import Node
import PostgresNIO
import Sodium
import Store
import TestSupport

/// Ingest on the shared PostgreSQL log (docs/multi-hub.md) with one or two hub processes' engines,
/// against raw PostgreSQL: `COPY` of the same attempt rows into a bare table, in the same run.
/// The raw baseline talks to PostgreSQL through postgres-nio directly, not through the log it is
/// measured against (as the SQLite baseline binds SQLite directly).
struct PostgresIngestBenchmark {
    let results: Int
    let sites: Int
    let hubs: Int
    let host: String
    let port: Int
    let user: String
    let directory: String

    struct Report {
        var results = 0
        /// Until the shared log holds everything (every upload acknowledged).
        var ingestSeconds = 0.0
        /// Until every hub's view has merged everything too.
        var viewsSeconds = 0.0
        var copySeconds = 0.0
    }

    func settings(_ database: String, hub: String) -> PostgresHubLog.Settings {
        .init(host: host, port: port, database: database, user: user, poolSize: 8, tls: "disable", timeoutSeconds: 20, hubName: hub)
    }

    /// A raw client for set-up and the baseline.
    func rawClient(_ database: String) -> PostgresClient {
        let c: PostgresClient.Configuration =
            host.hasPrefix("/")
            ? .init(unixSocketPath: "\(host)/.s.PGSQL.\(port)", username: user, password: nil, database: database)
            : .init(host: host, port: port, username: user, password: nil, database: database, tls: .disable)
        return PostgresClient(configuration: c, backgroundLogger: benchLogger())
    }

    func run(log: (String) -> Void) async throws -> Report {
        var report = Report()
        let dir = "\(directory)/hocvu-bench-ingest-pg"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let logger = benchLogger()
        let database = "hocvu_bench_\(UInt32.random(in: 0...UInt32.max))"
        let admin = rawClient("postgres")
        let adminRun = Task { await admin.run() }
        try await admin.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(database)"))
        defer { adminRun.cancel() }

        let setup = PostgresHubLog(settings(database, hub: "bench"), logger: logger)
        try setup.migrate()
        let curriculum = SampleCurriculum.make()
        let (siteStores, rows) = try IngestBenchmark.recordSites(results: results, sites: sites, directory: dir, log: log) {
            try setup.enroll(communeCode: $0, identityKey: $1, transportKey: $2, at: NodeStore.systemNow())
        }
        report.results = (results / sites) * sites

        let hubKeys = BoxKeyPair.generate()
        let hubIdentity = SigningKeyPair.generate()
        var servers = [HubServer]()
        var views = [NodeStore]()
        var endpoints = [String]()
        for h in 0..<hubs {
            let view = try NodeStore(path: "\(dir)/hub-\(h).sqlite", identity: hubIdentity)
            try view.installCurriculum(curriculum)
            var config = HubServer.Configuration(bind: "tcp://127.0.0.1:*", transportKeys: hubKeys)
            config.sharedLog = PostgresHubLog(settings(database, hub: "hub-\(h)"), logger: logger)
            let server = HubServer(store: view, configuration: config, logger: logger)
            endpoints.append(try server.start())
            servers.append(server)
            views.append(view)
        }
        // Both hubs know the enrollments before a site knocks.
        while try views.contains(where: { try $0.enrollments().count < sites }) { usleep(10_000) }

        log("ingesting over CURVE into the shared log with \(hubs) hub(s)…")
        let t0 = ContinuousClock.now
        var clients = [SiteClient]()
        for (i, (store, keys, _)) in siteStores.enumerated() {
            // Sites spread evenly over the hubs.
            let first = endpoints[i % hubs]
            var config = SiteClient.Configuration(hubEndpoint: first, hubTransportKey: hubKeys.publicKey, transportKeys: keys)
            config.hubEndpoints = [first] + endpoints.filter { $0 != first }
            config.reconnectBase = 100
            let c = try SiteClient(store: store, configuration: config, logger: logger)
            try c.start()
            clients.append(c)
        }
        let targets = try siteStores.map { try $0.0.versionVector() }
        while true {
            let heads = try setup.heads()
            if targets.allSatisfy({ heads.dominates($0.restricted(to: $0.entries.keys.first!.node)) }) { break }
            usleep(5_000)
        }
        report.ingestSeconds = (ContinuousClock.now - t0).seconds
        let heads = try setup.heads()
        while try views.contains(where: { try !$0.versionVector().dominates(heads) }) { usleep(5_000) }
        report.viewsSeconds = (ContinuousClock.now - t0).seconds
        for c in clients { c.stop() }
        for s in servers { s.stop() }
        setup.close()

        // Raw baseline: the same attempt rows, a bare table, COPY in one transaction.
        log("raw baseline: COPY…")
        let raw = rawClient(database)
        let rawRun = Task { await raw.run() }
        defer { rawRun.cancel() }
        try await raw.query(
            """
            CREATE TABLE raw_attempt (attempt_id text PRIMARY KEY, learner_id text, quiz_id text, answers bytea, score integer,
              max_score integer, started_at bigint, finished_at bigint)
            """)
        // The rows as COPY text, built before the clock starts (as the SQLite baseline's are bound from memory).
        var text = ByteBuffer()
        for a in rows {
            var w = ByteWriter()
            for x in a.answers { w.zigzag(Int64(x)) }  // as the store and the SQLite baseline encode them
            let hex = w.bytes.map { String(format: "%02x", $0) }.joined()
            text.writeString("\(a.attemptID)\t\(a.learnerID)\t\(a.quizID)\t\\\\x\(hex)\t\(a.score)\t\(a.maxScore)\t\(a.startedAt)\t\(a.finishedAt)\n")
        }
        let t1 = ContinuousClock.now
        try await raw.withTransaction(logger: logger) { conn in
            try await conn.copyFrom(table: "raw_attempt", logger: logger) { writer in
                try await writer.write(text)
            }
        }
        report.copySeconds = (ContinuousClock.now - t1).seconds
        try await admin.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(database) WITH (FORCE)"))
        try? FileManager.default.removeItem(atPath: dir)
        return report
    }
}
