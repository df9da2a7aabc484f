import ArgumentParser
import CoreMetrics
import Foundation
import Node
import Portal
import ServiceLifecycle
import Config
import Logging
import Merge
import Model
import Release
import Store

extension HocVu {
    struct Site: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a commune site and feed it learner events.", subcommands: [Run.self, Import.self, Courses.self, Roster.self, User.self, App.self, Restored.self])
    }
}

extension HocVu.Site {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sync with the hub until SIGTERM or SIGINT; SIGHUP reloads the trust file.",
            discussion: "Either --config FILE (config/site.toml) or the options below.")
        @OptionGroup var common: DaemonOptions
        @Option(help: "The hub's endpoint, e.g. tcp://hub.example:7400; repeat it for several hub processes, in order of preference.")
        var hub: [String] = []
        @Option(help: "The hub's transport public key (hex), pinned: no other server is trusted.") var hubKey: String?
        @Option(help: "The hub's identity public key (hex), pinned: it signs the records of this site's learners recorded elsewhere.") var hubIdentity: String?
        @Option(help: "Cap on release download speed in bytes per second (default: none).") var fetchRate: Int?
        @Option(help: "Serve the learner portal on this IPv4:PORT (e.g. 0.0.0.0:8480), overriding [portal].") var portal: String?

        /// Usage errors, found before any file is read: without --config the hub's endpoint and key
        /// must be given, and a key option must be 64 hex characters.
        func validate() throws {
            if common.config == nil {
                guard !hub.isEmpty else { throw ValidationError("--hub is required without --config ([hub] endpoint)") }
                guard hubKey != nil else { throw ValidationError("--hub-key is required without --config ([hub] transport_key)") }
            }
            if let hubKey { _ = try publicKey(hubKey, option: "--hub-key") }
            if let hubIdentity { _ = try publicKey(hubIdentity, option: "--hub-identity") }
            if let portal, DashboardConfig.hostAndPort(portal) == nil {
                throw ValidationError("--portal must be IPV4:PORT, e.g. 0.0.0.0:8480")
            }
        }

        func settings() throws -> SiteConfig {
            var c = SiteConfig()
            if let config = common.config, case .site(let s) = try readConfig(config, as: "site") { c = s }
            common.apply(to: &c)
            if !hub.isEmpty { (c.hubEndpoint, c.hubEndpoints) = (hub[0], hub) }
            c.hubTransportKey = hubKey ?? c.hubTransportKey
            c.hubIdentityKey = hubIdentity ?? c.hubIdentityKey
            c.fetchRate = fetchRate ?? c.fetchRate
            if let portal { (c.portal.enabled, c.portal.listen) = (true, portal) }
            // validate() checked the options; the configuration file is checked as it is read (exit 1,
            // naming file, key and line). Left: the example's placeholder key, which is well formed.
            for (key, value) in [("[hub] transport_key (--hub-key)", c.hubTransportKey), ("[hub] identity_key (--hub-identity)", c.hubIdentityKey ?? "")]
            where SiteConfig.isPlaceholderKey(value) {
                throw Failure("\(key) is still the example's placeholder (all zeros): set the hub's real key, as the hub's `hocvu keygen` printed it")
            }
            guard publicKey(hex: c.hubTransportKey) != nil, c.hubIdentityKey.map({ publicKey(hex: $0) != nil }) ?? true else {
                throw Failure("the hub's keys are not 64 hex characters each; check [hub] in \(common.config ?? "the configuration")")
            }
            return c
        }

        func run() async throws {
            let c = try settings()
            let logger = HocVu.makeLogger("hocvu.site", level: Logger.Level(rawValue: c.logLevel) ?? .info)
            let metrics = DaemonMetrics.make(role: "site", address: c.metrics)
            let (client, db) = try Daemon.starting(logger: logger) {
                let (db, keys) = try Daemon.openChecked(db: c.database, keys: c.keys, role: .site, logger: logger)
                var config = SiteClient.Configuration(
                    hubEndpoint: c.hubEndpoint, hubTransportKey: publicKey(hex: c.hubTransportKey)!,  // checked in settings()
                    transportKeys: keys.transport)
                config.hubEndpoints = c.hubEndpoints  // several hub processes: failover (docs/multi-hub.md)
                if let identity = c.hubIdentityKey { config.hubIdentityKey = publicKey(hex: identity)! }  // checked in settings()
                if let trust = c.trust {
                    config.trust = try loadTrust(trust)
                    config.chunkDirectory = c.chunks
                    config.fetchBytesPerSecond = c.fetchRate
                }
                if let metrics { config.metrics = SiteMetrics(factory: metrics.factory) }
                let client = try SiteClient(store: db, configuration: config, logger: logger)
                try client.start()
                return (client, db)
            }
            logger.info("Site syncing", metadata: ["hub": "\(c.hubEndpoints.isEmpty ? [c.hubEndpoint] : c.hubEndpoints)"])
            let trust = c.trust
            let daemon = Daemon(
                logger: logger, role: "site",
                engine: DaemonEngine(
                    isAlive: { client.isAlive }, finished: { await client.finished() }, hasFinished: { client.hasFinished },
                    requestStop: { client.stop(timeout: 0) }, refusedForGood: { client.status.refused }),
                statusPath: c.status, metricsAddress: c.metrics, metrics: metrics,
                extraServices: c.portal.enabled ? { bound in [try Self.portal(c, store: db, client: client, logger: logger, bound: bound)] } : nil,
                status: { .site(Self.status(client.status, db)) },
                reload: {
                    guard let trust else { return }
                    do { client.reload(trust: try loadTrust(trust)) } catch {
                        logger.error("Trust file not reloaded; keeping the one in use", metadata: ["error": "\(error)"])
                    }
                },
                // A site idles most of the day: give memory back after start, then every 10 minutes.
                releaseStoreMemory: { db.releaseMemory() }, memoryReleaseInterval: .seconds(600))
            let code = await daemon.run()
            if code != 0 { throw ExitCode(code) }
        }

        /// The learner portal as a service of the site's group, on the site's own store and chunk files.
        static func portal(_ c: SiteConfig, store: NodeStore, client: SiteClient, logger: Logger, bound: @escaping @Sendable () async -> Void) throws -> any Service {
            guard let (host, port) = DashboardConfig.hostAndPort(c.portal.listen) else { throw Failure("[portal] listen \(c.portal.listen) is not IPV4:PORT") }
            return try PortalServer(
                store: store, chunks: try ChunkStore(directory: c.chunks, reader: true),
                configuration: .init(host: host, port: port, secureCookies: c.portal.behindTLSProxy), logger: logger,
                sync: {
                    let s = client.status
                    let facts = try? store.facts(acknowledged: s.hubHas)
                    return PortalServer.SyncStatus(
                        connected: s.connected, lastHeardFromHub: s.lastHeardFromHub, unacknowledgedBatches: facts?.unacknowledgedBatches,
                        installedRelease: s.installedRelease ?? facts?.releaseVersion, fetchingRelease: s.fetchingRelease,
                        quarantinedRecords: facts?.openQuarantine, problem: s.refused ?? s.diskFull ?? s.chunkStoreError ?? s.releaseRefusal)
                }
            ).service(onRunning: bound)
        }

        static func status(_ s: SiteClient.Status, _ db: NodeStore) -> SiteStatusReport {
            let facts = try? db.facts(acknowledged: s.hubHas)
            return SiteStatusReport(
                connected: s.connected, lastHeardFromHub: s.lastHeardFromHub, unacknowledgedMessages: s.unacknowledgedMessages,
                unacknowledgedBatches: facts?.unacknowledgedBatches, pendingChanges: facts?.pendingChanges,
                quarantinedRecords: facts?.openQuarantine, uploadsSent: s.uploadsSent, chunksRemaining: s.chunksRemaining,
                chunksFetched: s.chunksFetched, chunkBytesFetched: s.chunkBytesFetched, clockOffsetMilliseconds: s.clockOffsetMilliseconds,
                clockDisagreement: s.clockDisagreement, installedRelease: s.installedRelease ?? facts?.releaseVersion,
                fetchingRelease: s.fetchingRelease, releaseRefusal: s.releaseRefusal, refusedByHub: s.refused,
                homeFeedCursor: s.homeFeedCursor,
                diskFull: s.diskFull != nil || s.chunkStoreError?.hasPrefix("disk full") == true,
                diskFullDetail: s.diskFull ?? s.chunkStoreError,
                refusals: s.droppedFromHub.isEmpty ? nil : s.droppedFromHub)
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record learner events from a JSON Lines file (docs/import-format.md); report bad lines.",
            discussion: """
                Safe to run again: every line is decided once and journaled in the transaction that records it, \
                so a re-run (after a kill, a full disk, or by mistake) skips what is recorded and a file with \
                appended lines records only the new ones. Each committed transaction is reported \
                ("lines 1–500 committed") the moment it is on disk.
                """)
        @OptionGroup var store: StoreOptions
        @Flag(help: "Try again the lines an earlier run refused (e.g. once the release they need has arrived).")
        var retryRefused = false
        @Argument(help: "The JSON Lines file.") var file: String

        /// Unbuffered, so a killed import leaves every line it printed.
        private func out(_ s: String) { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }
        private func err(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

        func run() throws {
            if let problem = HocVu.ConfigCommand.Check.readableProblem(file, hint: "check the path of the JSON Lines file") {
                throw Failure(problem)
            }
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw Failure("\(file) is not UTF-8 text (or not a regular file); save the export as UTF-8 JSON Lines (docs/import-format.md)")
            }
            let (db, _) = try store.open()
            let report: EventImport.Report
            do {
                report = try db.runImport(text, retryRefused: retryRefused) { c in
                    for e in c.errors { err("\(file): \(e)") }
                    // The trail of what is on disk: one line per transaction that recorded something.
                    guard c.recorded > 0 else { return }
                    var parts = ["\(c.recorded) recorded"]
                    if c.alreadyImported > 0 { parts.append("\(c.alreadyImported) already imported") }
                    if !c.errors.isEmpty { parts.append("\(c.errors.count) refused") }
                    out("lines \(c.lines.lowerBound)–\(c.lines.upperBound) committed: \(parts.joined(separator: ", "))")
                }
            } catch let stopped as EventImport.Stopped {
                err("\(file): \(stopped)")
                throw ExitCode(1)
            }
            var summary = "\(report.recorded) events recorded"
            if report.alreadyImported > 0 { summary += ", \(report.alreadyImported) lines already imported, skipped" }
            summary += ", \(report.errors.count) lines refused"
            if report.refusedEarlier > 0 {
                summary += " (\(report.refusedEarlier) on an earlier run; --retry-refused tries them again)"
            }
            out(summary)
            if !report.errors.isEmpty { throw ExitCode(2) }
        }
    }
}

extension HocVu.Site {
    struct Courses: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The installed release, the one being fetched, and the courses it offers a role in a commune.")
        @OptionGroup var store: StoreOptions
        // Listing courses reads only the database; the chunk directory is the daemon's (opening it
        // here would clear the daemon's half-written chunks). Accepted for old scripts.
        @Option(help: .hidden) var chunks: String?
        @Option(help: "Learner role: \(Role.allCases.map(\.rawValue).joined(separator: ", ")).") var role: String
        @Option(help: "The learner's home commune code (for province targeting).") var commune: Int?

        func validate() throws {
            guard Role(rawValue: role) != nil else {
                throw ValidationError("--role must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }

        func run() throws {
            let r = Role(rawValue: role)!  // checked in validate()
            let (db, _) = try store.open(.readOnly, role: .site, command: "site courses")
            guard let installed = try db.installedRelease() else {
                print("No signed release installed yet.")
                return
            }
            let m = try Manifest.decode(installed.manifest)
            print("Installed release \(m.version) (expires \(Date(timeIntervalSince1970: Double(m.expires))))")
            if let staged = try db.stagedRelease() { print("Fetching release \(staged.version)") }
            let province = try commune.flatMap { try db.provinceOf(commune: $0) }
            for c in m.curriculum.courses(for: r, province: province) {
                print("  \(c.id)  \(c.title)  (\(c.lessons.count) lessons, \(c.quizzes.count) quizzes)")
            }
        }
    }
}

extension HocVu.Site {
    struct Restored: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "After restoring the database from a backup: start a new epoch so new changes never reuse sequence numbers.")
        @OptionGroup var store: StoreOptions

        func run() throws {
            let (db, _) = try store.open(.existing, role: .site, command: "site restored")
            try db.rotateEpoch()
            print("new epoch \(try db.currentOrigin()); start the site as usual")
        }
    }

    struct Roster: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "This commune's roster, as the hub sent it, with who has not started (personal data: names).")
        @OptionGroup var store: StoreOptions
        @Flag(help: "Only the officials who have not started (not enrolled in any course).") var notStarted = false

        func run() throws {
            let (db, _) = try store.open(.readOnly, role: .site, command: "site roster")
            guard let commune = try db.siteCommune() else {
                print("No roster yet: the hub sends this commune's roster with the home feed once the site has synced (hub_identity_key must be set in site.toml).")
                return
            }
            let roster = try db.rosterMembers(commune: commune)
            print(RosterFormatter.render(notStarted ? roster.filter { $0.stage == .notStarted } : roster, of: roster))
        }
    }
}
