import ArgumentParser
import CoreMetrics
import Foundation
import Logging
import Prometheus
import ServiceLifecycle
import Store
import UnixSignals

/// A daemon's services in one `ServiceGroup`: the sync engine, the status file, the metrics endpoint
/// (if configured), SIGHUP → `reload`, and systemd's notify protocol. SIGTERM/SIGINT shut it down
/// gracefully (exit status 0, the engine finishing its transaction in flight); an engine that stops
/// by itself (e.g. a store error) ends the group with exit status 1, so `Restart=always` brings it
/// back — or 78 if the hub refused this site for good, which no restart can mend.
struct Daemon {
    let logger: Logger
    let role: String
    let engine: DaemonEngine
    let statusPath: String?
    /// Loopback address for Prometheus ("127.0.0.1:9464"), or nil for none.
    let metricsAddress: String?
    /// The registry the engine's event counters were created in (``DaemonMetrics/make(role:address:)``).
    let metrics: DaemonMetrics?
    /// More listeners of the group (the hub's dashboard, a site's portal), made when the group
    /// starts; each calls `bound` once it listens (READY=1 waits for that). A failure to make them
    /// is a failure to start.
    var extraServices: ((_ bound: @escaping @Sendable () async -> Void) throws -> [any Service])? = nil
    /// The engine's status now (called once a second).
    let status: @Sendable () -> DaemonStatus.Report
    /// Reloads the trust file (SIGHUP).
    let reload: @Sendable () -> Void
    /// Frees the store's caches (after the start-up check, then while idle: ``MemoryService``).
    var releaseStoreMemory: (@Sendable () -> Void)? = nil
    /// How often memory is given back after the first time (nil: only once, after start).
    var memoryReleaseInterval: Duration? = nil

    /// Exit status for "the hub refused this site for good" (sysexits EX_CONFIG). The unit's
    /// `RestartPreventExitStatus=78` keeps systemd from restarting a revoked site every 5 s forever.
    static let refusedExitStatus: Int32 = 78

    /// Runs the group until shutdown; returns the process's exit status.
    func run() async -> Int32 {
        let notifier = SystemdNotifier()
        let board = StatusBoard()
        var services: [any Service] = []
        let readiness = Readiness()
        do {
            if let metricsAddress, let metrics {
                readiness.expectListener()
                services.append(
                    try MetricsEndpoint.application(address: metricsAddress, metrics: metrics, logger: logger) { readiness.listenerBound() })
            }
            if let extraServices {
                let extra = try extraServices { readiness.listenerBound() }
                for _ in extra { readiness.expectListener() }
                services.append(contentsOf: extra)
            }
        } catch {
            logger.critical("Cannot start: \(error)")
            engine.requestStop()
            await engine.finished()
            return 1
        }
        // The group shuts its services down in reverse order: systemd hears STOPPING=1 first, the
        // metrics endpoint closes, the status file goes, and the engine stops last.
        services.insert(contentsOf: [
            EngineService(engine: engine, logger: logger) as any Service,
            StatusService(path: statusPath, board: board, metrics: metrics, sample: status),
        ], at: 0)
        if let releaseStoreMemory {
            services.append(MemoryService(releaseStoreMemory: releaseStoreMemory, interval: memoryReleaseInterval))
        }
        services.append(ReloadService(notifier: notifier, reload: reload))
        services.append(SystemdService(notifier: notifier, board: board, isAlive: engine.isAlive, readiness: readiness))
        let group = ServiceGroup(
            configuration: .init(
                services: services.map {
                    .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)
                },
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
            return 0
        } catch let stopped as EngineService.Stopped {
            if let reason = stopped.refusedForGood {
                logger.critical(
                    "The hub refused this site for good: \(reason). Sync is stopped and the service will not restart by itself. Ask the hub administrator to enroll this site again (hocvu hub enroll), then: systemctl restart hocvu-site")
                return Self.refusedExitStatus
            }
            logger.critical("The sync loop stopped on an error (see above); exiting so the service manager restarts hocvu")
            return 1
        } catch {
            logger.critical("Stopping on an error: \(error); exiting so the service manager restarts hocvu")
            engine.requestStop()
            await engine.finished()
            return 1
        }
    }
}

extension Daemon {
    /// Runs a step of a daemon's start; a failure is logged at `crit` (so `journalctl -p err` shows
    /// why the service is restarting) and ends the process with status 1.
    static func starting<T>(logger: Logger, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let exit as ExitCode { throw exit } catch {
            logger.critical("Cannot start: \(error)")
            throw ExitCode.failure
        }
    }

    /// Opens the daemon's database, creating it on the first start, after SQLite's quick check of
    /// every page: a damaged database is refused with the restore steps, never run on. The check
    /// reads the whole file, so systemd is asked for more start time first.
    static func openChecked(db: String, keys: String, role: NodeRole, logger: Logger) throws -> (NodeStore, KeyFiles) {
        let notifier = SystemdNotifier()
        notifier.notify("EXTEND_TIMEOUT_USEC=\(15 * 60 * 1_000_000)\nSTATUS=checking the database (quick_check)")
        let started = Date()
        let opened = try openStore(db: db, keys: keys, access: .create, role: role, command: "\(role.rawValue) run", check: .quick)
        let seconds = Date().timeIntervalSince(started)
        logger.info("Database checked and open", metadata: ["database": "\(db)", "check_s": "\(String(format: "%.2f", seconds))"])
        return opened
    }
}

extension DaemonMetrics {
    /// The daemon's registry if metrics are configured, made before the engine so that its event
    /// counters are created in it. Metrics created anywhere else through swift-metrics land there too.
    static func make(role: String, address: String?) -> DaemonMetrics? {
        guard address != nil else { return nil }
        let metrics = DaemonMetrics(role: role, version: HocVu.version)
        MetricsSystem.bootstrap(metrics.factory)
        return metrics
    }
}
