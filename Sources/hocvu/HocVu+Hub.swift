import ArgumentParser
import CoreMetrics
import Config
import Dashboard
import Foundation
import Logging
import Node
import Store
import HubPostgres
import Merge
import Model
import ServiceLifecycle
import Sodium
import Synchronization

extension HocVu {
    struct Hub: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the national hub and administer site enrollment.",
            subcommands: [Run.self, Enroll.self, Revoke.self, Sites.self, Report.self, Roster.self, User.self, Migrate.self])
    }
}

extension HocVu.Hub {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve sites until SIGTERM or SIGINT; SIGHUP reloads the trust file (enrollments reload by themselves).",
            discussion: "Either --config FILE (config/hub.toml) or the options below.")
        @OptionGroup var common: DaemonOptions
        @Option(help: "ZeroMQ endpoint to bind (CURVE; no plaintext listener exists).") var bind: String?
        @Option(help: "Sites downloading a release at once; others are told when to come back.") var maxTransfers: Int?
        @Option(help: "Serve the web dashboard on this loopback address (127.0.0.1:PORT), overriding [dashboard].") var dashboard: String?

        func validate() throws {
            if let dashboard {
                guard let (host, _) = DashboardConfig.hostAndPort(dashboard), DashboardConfig.isLoopback(host) else {
                    throw ValidationError("--dashboard must be 127.0.0.1:PORT: the dashboard listens on loopback only")
                }
            }
        }

        func run() async throws {
            var c = HubConfig()
            if let config = common.config, case .hub(let h) = try readConfig(config, as: "hub") { c = h }
            common.apply(to: &c)
            c.bind = bind ?? c.bind
            c.maxTransfers = maxTransfers ?? c.maxTransfers
            if let dashboard {
                c.dashboard = DashboardConfig()
                (c.dashboard.enabled, c.dashboard.listen) = (true, dashboard)
            }

            let logger = HocVu.makeLogger("hocvu.hub", level: Logger.Level(rawValue: c.logLevel) ?? .info)
            // Several hubs on one database: the shared log acknowledges, this hub's store is its view.
            // Opened (and its schema checked) here, in the async context, so no thread waits on it.
            let sharedLog: PostgresHubLog?
            do {
                sharedLog = c.store.backend == .postgresql ? try await SharedDatabase.openChecked(c.store, logger: logger) : nil
            } catch {
                logger.critical("Cannot start: \(error)")
                throw ExitCode.failure
            }
            if sharedLog != nil {
                logger.info("Shared database", metadata: ["store.host": "\(c.store.host)", "store.database": "\(c.store.database)"])
            }
            let metrics = DaemonMetrics.make(role: "hub", address: c.metrics)
            let (hub, db, keys, endpoint) = try Daemon.starting(logger: logger) {
                let (db, keys) = try Daemon.openChecked(db: c.database, keys: c.keys, role: .hub, logger: logger)
                var settings = HubServer.Configuration(bind: c.bind, transportKeys: keys.transport)
                settings.identity = keys.identity  // signs each site's home feed
                if let trust = c.trust {
                    settings.releases = .init(trust: try loadTrust(trust), chunkDirectory: c.chunks)
                    settings.releases!.maxConcurrentTransfers = c.maxTransfers
                }
                if let metrics { settings.metrics = HubMetrics(factory: metrics.factory) }
                settings.sharedLog = sharedLog
                let hub = HubServer(store: db, configuration: settings, logger: logger)
                return (hub, db, keys, try hub.start())
            }
            logger.info(
                "Hub ready",
                metadata: [
                    "endpoint": "\(endpoint)", "hub.transport_key": "\(keys.transport.publicKey.hexString)",
                    "hub.identity_key": "\(keys.identity.publicKey.hexString)",
                ])
            let rate = IngestRate()
            let trust = c.trust
            let shared = c.store.backend == .postgresql
            let daemon = Daemon(
                logger: logger, role: "hub",
                engine: DaemonEngine(
                    isAlive: { hub.isAlive }, finished: { await hub.finished() }, hasFinished: { hub.hasFinished },
                    requestStop: { hub.stop(timeout: 0) }),
                statusPath: c.status, metricsAddress: c.metrics, metrics: metrics,
                extraServices: c.dashboard.enabled ? { bound in [try Self.dashboard(c.dashboard, store: db, logger: logger, bound: bound)] } : nil,
                status: {
                    let s = hub.stats
                    var r = Self.status(s, db, changesPerSecond: rate.update(changes: s.changesMerged))
                    if shared {
                        r.sharedDatabase = s.sharedLogUnavailable == nil ? "ok" : "unreachable"
                        r.sharedDatabaseDetail = s.sharedLogUnavailable
                        r.viewLagChanges = s.viewLagChanges
                    }
                    return .hub(r)
                },
                reload: {
                    guard let trust else { return }
                    do { hub.reload(trust: try loadTrust(trust)) } catch {
                        logger.error("Trust file not reloaded; keeping the one in use", metadata: ["error": "\(error)"])
                    }
                },
                // Once, after the start-up check (its pages are no one's working set); the dashboard's
                // readers keep their caches after that.
                releaseStoreMemory: { db.releaseMemory() })
            let code = await daemon.run()
            if code != 0 { throw ExitCode(code) }
        }

        /// The web dashboard as a service of the hub's group, on the hub's own store.
        static func dashboard(_ d: DashboardConfig, store: NodeStore, logger: Logger, bound: @escaping @Sendable () async -> Void) throws -> any Service {
            guard let (host, port) = DashboardConfig.hostAndPort(d.listen) else { throw Failure("[dashboard] listen \(d.listen) is not IPV4:PORT") }
            return try DashboardServer(
                store: store, configuration: .init(host: host, port: port, secureCookies: d.behindTLSProxy), logger: logger
            ).service(onRunning: bound)
        }

        static func status(_ s: HubServer.Stats, _ db: NodeStore, changesPerSecond: Double) -> HubStatusReport {
            let enrolled = (try? db.enrollments()) ?? []
            let now = NodeStore.systemNow()
            let stale = enrolled.filter {
                !$0.isRevoked && StaleWindow.standard.isStale(lastHeard: $0.lastHeardAt, now: now)
            }.count
            return HubStatusReport(
                diskFull: s.diskFull != nil, diskFullDetail: s.diskFull, sitesConnected: s.connectedCommunes.count,
                sitesEnrolled: enrolled.filter { !$0.isRevoked }.count, staleSites: stale, changesMerged: s.changesMerged,
                ingestChangesPerSecond: changesPerSecond, release: s.releaseVersion, chunksServed: s.chunksServed,
                chunkBytesServed: s.chunkBytesServed, transfersDeferred: s.transfersDeferred,
                messagesDropped: s.dropped.values.reduce(0, +), alerts: s.alerts.count,
                // Exact, per reason and per site (docs/operations.md, "Refusals").
                refusals: s.dropped,
                refusalsBySite: Dictionary(grouping: s.refusals, by: { $0.key.commune.map(String.init) ?? "-" })
                    .mapValues { Dictionary($0.map { ($0.key.reason, $0.value) }, uniquingKeysWith: +) })
        }
    }

    /// Changes merged per second over the last minute, from the hub's counters.
    final class IngestRate: Sendable {
        private let samples = Mutex<[(at: Date, changes: Int)]>([])

        func update(changes: Int) -> Double {
            let now = Date()
            return samples.withLock { samples in
                samples.append((now, changes))
                samples.removeAll { now.timeIntervalSince($0.at) > 60 }
                guard let first = samples.first, now.timeIntervalSince(first.at) > 0.5 else { return 0 }
                return Double(changes - first.changes) / now.timeIntervalSince(first.at)
            }
        }
    }

    struct Enroll: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Enroll a commune's site with the public keys `hocvu keygen` printed.",
            discussion: "Creates the hub's database when there is none yet (enrolling before the hub's first start) and says so.")
        @Option(help: "The hub's database.") var db = "/var/lib/hocvu/hocvu.sqlite"
        @Option(help: "Official commune code (see the admin-units list).") var commune: Int
        @Option(help: "The site's identity public key (hex).") var identity: String
        @Option(help: "The site's transport public key (hex).") var transport: String
        @Option(help: "Directory holding the hub's keys.") var keys = "/etc/hocvu/keys"
        @Option(help: "A hub.toml whose [store] is PostgreSQL: enroll in the shared database, for every hub on it.")
        var config: String?

        /// Malformed keys are refused before the database is opened (or created).
        func validate() throws {
            _ = try publicKey(identity, option: "--identity")
            _ = try publicKey(transport, option: "--transport")
        }

        func run() throws {
            if let c = try SharedDatabase.configured(config) {
                let units = try AdminUnits.bundled()
                guard units.provinces.contains(where: { $0.communes.contains { $0.code == commune } }) else {
                    throw Failure("\(StoreError.unknownCommune(commune))")
                }
                let log = try SharedDatabase.open(c.store, logger: HocVu.makeLogger("hocvu.enroll", level: .warning))
                defer { log.close() }
                do {
                    try log.enroll(
                        communeCode: commune, identityKey: try publicKey(identity, option: "--identity"),
                        transportKey: try publicKey(transport, option: "--transport"), at: NodeStore.systemNow())
                } catch let e as StoreError { throw Failure("\(e)") }
                print("enrolled commune \(commune) in the shared database; every running hub on it admits it within a second")
                return
            }
            let existed = FileManager.default.fileExists(atPath: db)
            let (store, _) = try openStore(db: db, keys: keys, access: .create, role: .hub, command: "hub enroll")
            if !existed {
                FileHandle.standardError.write(Data("note: there was no database at \(db); created the hub's database there\n".utf8))
            }
            try store.enroll(
                communeCode: commune, identityKey: try publicKey(identity, option: "--identity"),
                transportKey: try publicKey(transport, option: "--transport"))
            print("enrolled commune \(commune); a running hub admits it at once")
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a commune's site: its connection is refused from now on.")
        @Option(help: "The hub's database.") var db = "/var/lib/hocvu/hocvu.sqlite"
        @Option(help: "Official commune code.") var commune: Int
        @Option(help: "Directory holding the hub's keys.") var keys = "/etc/hocvu/keys"
        @Option(help: "A hub.toml whose [store] is PostgreSQL: revoke in the shared database, for every hub on it.")
        var config: String?

        func run() throws {
            if let c = try SharedDatabase.configured(config) {
                let log = try SharedDatabase.open(c.store, logger: HocVu.makeLogger("hocvu.revoke", level: .warning))
                defer { log.close() }
                do { try log.revoke(communeCode: commune, at: NodeStore.systemNow()) } catch let e as StoreError { throw Failure("\(e)") }
                print("revoked commune \(commune) in the shared database; every running hub on it refuses it within a second")
                return
            }
            let (store, _) = try openStore(db: db, keys: keys, access: .existing, role: .hub, command: "hub revoke")
            try store.revoke(communeCode: commune)
            print("revoked commune \(commune); a running hub refuses it within a second")
        }
    }

    struct Sites: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List enrolled sites and when each was last heard from.")
        @OptionGroup var store: StoreOptions

        func run() throws {
            let (db, _) = try store.open(.readOnly, role: .hub, command: "hub sites")
            for e in try db.enrollments() {
                let heard = e.lastHeardAt.map { ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double($0) / 1000)) } ?? "never"
                print("\(e.communeCode)\t\(e.isRevoked ? "revoked" : "active")\tlast heard \(heard)\tidentity \(e.identityKey.hexString.prefix(16))…")
            }
        }
    }

    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "National results per commune, province and nation against the 40 % (2025) and 100 % (2026) targets.")
        enum Format: String, ExpressibleByArgument { case table, json, csv }
        @Option(help: "The hub's SQLite database; opened read-only, no keys needed.")
        var db = "/var/lib/hocvu/hocvu.sqlite"
        /// Accepted and ignored: the report needs no keys, and scripts written for earlier versions pass it.
        @Option(help: .hidden) var keys: String?
        @Option(help: "table, json (docs/report-format.md) or csv (UTF-8 with a byte-order mark, for Excel).")
        var format: Format = .table
        @Option(help: "A site not heard from for this many days is stale.")
        var staleAfterDays = Int(StaleWindow.standard.seconds / 86_400)

        func validate() throws {
            guard (1...365).contains(staleAfterDays) else { throw ValidationError("--stale-after-days must be 1…365") }
        }

        func run() throws {
            let store = try openForReading(db: db, role: .hub, command: "hub report")
            let report = try store.nationalReport(staleAfter: StaleWindow(.seconds(Int64(staleAfterDays) * 86_400)))
            FileHandle.standardOutput.write(Data(ReportFormatter.render(report, format: format).utf8))
        }
    }

    struct Roster: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The officials each commune must train: the denominator of every rate (docs/roster-format.md).",
            subcommands: [Import.self, List.self])

        struct Import: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Record a roster file (CSV with a header row, or JSON Lines); report bad rows by line.",
                discussion: """
                    Each row adds, changes or (status = removed) removes one official. A row equal to what the hub \
                    holds writes nothing, so the same file can be imported again. Each commune's site receives its \
                    own commune's entries through its home feed, never another commune's. Exit status 2 when rows \
                    were refused (the others are recorded).
                    """)
            @OptionGroup var store: StoreOptions
            @Option(help: "csv or jsonl (default: by the file name: .csv is CSV, anything else JSON Lines).")
            var format: String?
            @Argument(help: "The roster file (UTF-8).") var file: String

            func validate() throws {
                if let format, RosterImport.Format(rawValue: format) == nil {
                    throw ValidationError("--format must be csv or jsonl")
                }
            }

            func run() throws {
                if let problem = HocVu.ConfigCommand.Check.readableProblem(file, hint: "check the path of the roster file") {
                    throw Failure(problem)
                }
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                    throw Failure("\(file) is not UTF-8 text; save the roster as UTF-8 CSV or JSON Lines (docs/roster-format.md)")
                }
                let kind = format.flatMap(RosterImport.Format.init(rawValue:)) ?? RosterImport.Format.guess(path: file)
                let (rows, parseErrors) = RosterImport.parse(text, format: kind)
                let (db, _) = try store.open(.existing, role: .hub, command: "hub roster import")
                var report = try db.importRoster(rows)
                report.errors = (parseErrors + report.errors).sorted { $0.line < $1.line }
                for e in report.errors { FileHandle.standardError.write(Data("\(file): \(e)\n".utf8)) }
                print(
                    "\(report.added) added, \(report.changed) changed, \(report.removed) removed, "
                        + "\(report.unchanged) unchanged, \(report.errors.count) rows refused; "
                        + "\(report.communes.count) communes' sites will receive their changes")
                if !report.errors.isEmpty { throw ExitCode(ExitStatus.invalidInput) }
            }
        }

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "One commune's roster with each official's stage (personal data: names).")
            @OptionGroup var store: StoreOptions
            @Option(help: "The official commune code.") var commune: Int

            func run() throws {
                let (db, _) = try store.open(.readOnly, role: .hub, command: "hub roster list")
                print(RosterFormatter.render(try db.rosterMembers(commune: commune)))
            }
        }
    }
}
