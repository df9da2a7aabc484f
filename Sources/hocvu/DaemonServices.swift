import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

/// What the daemon shell needs of a sync engine (``Node/HubServer`` or ``Node/SiteClient``), which
/// runs its libzmq loop on a thread of its own, started before the service group runs.
struct DaemonEngine: Sendable {
    /// True while the loop goes round (the watchdog pings only then).
    var isAlive: @Sendable () -> Bool
    /// Returns once the loop has stopped (asked to, or by itself); returns early if cancelled.
    var finished: @Sendable () async -> Void
    var hasFinished: @Sendable () -> Bool
    /// Asks the loop to finish its transaction in flight and stop; returns at once.
    var requestStop: @Sendable () -> Void
    /// Why the peer refused this node for good (a revoked site), if it did: no restart can help.
    var refusedForGood: @Sendable () -> String? = { nil }
}

/// Runs an engine until graceful shutdown, then stops it (its transaction in flight finishes); an
/// engine that stops by itself throws ``Stopped``, which ends the group.
struct EngineService: Service {
    /// The engine's loop ended without being asked to.
    struct Stopped: Error, CustomStringConvertible {
        /// Why the peer refused this node for good, if that is why.
        let refusedForGood: String?
        var description: String { refusedForGood.map { "refused for good: \($0)" } ?? "the sync loop stopped on an error" }
    }

    let engine: DaemonEngine
    let logger: Logger
    /// How long the loop has to finish its transaction once asked to stop.
    var stopTimeout: Duration = .seconds(4)

    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await engine.finished() }
            group.addTask { [engine, logger, stopTimeout] in
                // Returns on graceful shutdown (SIGTERM/SIGINT, or another service ended the group);
                // throws only on cancellation, when there is no time left to wait either.
                let cancelled = (try? await gracefulShutdown()) == nil
                logger.info("Stopping: finishing the transaction in flight")
                engine.requestStop()
                guard !cancelled else { return }
                try? await Task.sleep(for: stopTimeout)
                if !Task.isCancelled { logger.error("The sync loop did not stop in time; exiting without it") }
            }
            await group.next()
            group.cancelAll()
        }
        if !engine.hasFinished() || Task.isShuttingDownGracefully { return }
        throw Stopped(refusedForGood: engine.refusedForGood())
    }
}

/// The latest status, shared by the services that report it.
final class StatusBoard: Sendable {
    private let latest = Mutex<DaemonStatus.Report?>(nil)
    var report: DaemonStatus.Report? { latest.withLock { $0 } }
    func publish(_ report: DaemonStatus.Report) { latest.withLock { $0 = report } }
}

/// Each second: takes the engine's status and publishes it (systemd's STATUS=, metrics); writes the
/// status file for `hocvu status` when the report changed, and at least every few seconds so a live
/// daemon never looks stale (``StatusFilePolicy``); removes the file on shutdown, so a stopped
/// daemon leaves no stale status.
struct StatusService: Service {
    let path: String?
    let board: StatusBoard
    let metrics: DaemonMetrics?
    let sample: @Sendable () -> DaemonStatus.Report

    func run() async throws {
        var policy = StatusFilePolicy()
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let report = sample()
            board.publish(report)
            metrics?.record(report)
            let now = Int64(Date().timeIntervalSince1970 * 1_000)
            if path != nil, policy.shouldWrite(report, now: now), write(report, now: now) { policy.wrote(report, at: now) }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
        }
        if let path { try? FileManager.default.removeItem(atPath: path) }
    }

    /// Replaces the file atomically (a temporary file renamed over it), so `hocvu status` never
    /// reads half a file. Not fsynced: the file lives in /run (memory), and a status lost to a
    /// power cut describes a process that is gone anyway.
    private func write(_ report: DaemonStatus.Report, now: Int64) -> Bool {
        guard let path else { return false }
        let status = DaemonStatus(updatedAt: now, pid: getpid(), report: report)
        guard let data = try? status.encoded() else { return false }
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty && !FileManager.default.fileExists(atPath: dir) {
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return false }
        let written = data.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == data.count, rename(temporary, path) == 0 else {
            unlink(temporary)
            return false
        }
        return true
    }
}

/// When the status file is rewritten: at once when the report changed, otherwise once the last
/// write is `refreshMilliseconds` old — well inside the 10 s after which `hocvu status` calls a
/// daemon "not responding". An idle daemon thus writes every 5 s instead of every second.
struct StatusFilePolicy: Sendable {
    var refreshMilliseconds: Int64 = 5_000
    private(set) var lastReport: DaemonStatus.Report?
    private(set) var lastWrite: Int64?

    func shouldWrite(_ report: DaemonStatus.Report, now: Int64) -> Bool {
        guard let lastWrite, report == lastReport else { return true }
        // A clock stepped back also rewrites: the age `hocvu status` computes must stay honest.
        return now - lastWrite >= refreshMilliseconds || now < lastWrite
    }

    mutating func wrote(_ report: DaemonStatus.Report, at now: Int64) {
        lastReport = report
        lastWrite = now
    }
}

/// Opens once every listener the daemon promises is bound (the metrics endpoint, the dashboard or
/// the portal, as configured); READY=1 waits for them, so a port in use fails the start instead.
final class Readiness: Sendable {
    private let pending = Atomic<Int>(0)
    init() {}
    /// One more listener to wait for; called before the group runs.
    func expectListener() { pending.add(1, ordering: .relaxed) }
    var isOpen: Bool { pending.load(ordering: .acquiring) <= 0 }
    func listenerBound() { pending.subtract(1, ordering: .releasing) }
}

/// systemd's notify protocol over the daemon's life: READY=1 once running — and only after the
/// metrics endpoint (if configured) is bound, so a port in use fails the start instead of leaving a
/// READY daemon without metrics — WATCHDOG=1 only while the engine's loop is alive (a wedged
/// database or disk stops the pings and systemd restarts us), STATUS= each second, STOPPING=1 when
/// shutdown begins.
struct SystemdService: Service {
    let notifier: SystemdNotifier
    let board: StatusBoard
    let isAlive: @Sendable () -> Bool
    var readiness = Readiness()

    func run() async throws {
        // A bind that fails ends the group (exit 1) while this waits: READY=1 is never sent.
        while !readiness.isOpen {
            if Task.isShuttingDownGracefully || Task.isCancelled {
                notifier.notify("STOPPING=1")
                return
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(20)) }
        }
        notifier.notify("READY=1\nSTATUS=started")
        // Wakes once a second (STATUS= changes no faster), or twice per watchdog interval if that
        // is shorter; it was every 100 ms, ten wake-ups a second of an otherwise idle site.
        let step: Duration = notifier.watchdogInterval.map { min(.seconds(1), .seconds($0 / 2)) } ?? .seconds(1)
        let clock = ContinuousClock()
        var lastPing = clock.now - .seconds(3_600)
        var lastStatus = lastPing
        var lastSummary = ""
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let now = clock.now
            if let interval = notifier.watchdogInterval, now - lastPing >= .seconds(interval), isAlive() {
                notifier.notify("WATCHDOG=1")
                lastPing = now
            }
            if now - lastStatus >= .seconds(1), let summary = board.report?.summary {
                if summary != lastSummary { notifier.notify("STATUS=\(summary)") }
                (lastStatus, lastSummary) = (now, summary)
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: step) }
        }
        notifier.notify("STOPPING=1")
    }
}

/// SIGHUP → RELOADING=1, `reload` (the trust file), READY=1.
struct ReloadService: Service {
    let notifier: SystemdNotifier
    let reload: @Sendable () -> Void

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            notifier.notify("RELOADING=1\nMONOTONIC_USEC=\(SystemdNotifier.monotonicMicroseconds())")
            reload()
            notifier.notify("READY=1")
        }
    }
}

/// Gives memory back that the daemon no longer uses: SQLite's page caches (the start-up check read
/// every page of the database into one reader's cache, up to 64 MiB) and the heap that glibc keeps
/// after it was freed. Once shortly after start, then every `interval` (nil: only once) — a site
/// idles most of the day, and a reader connection closed this way reopens on the next read.
struct MemoryService: Service {
    /// Frees the store's caches (``Store/NodeStore/releaseMemory()``); returns at once.
    let releaseStoreMemory: @Sendable () -> Void
    var firstAfter: Duration = .seconds(10)
    var interval: Duration?

    func run() async throws {
        var wait = firstAfter
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let pause = wait
            guard (try? await cancelWhenGracefulShutdown({ try await Task.sleep(for: pause) })) != nil else { return }
            releaseStoreMemory()
            // The writer's cache is released on its own queue, just after: the next round trims it.
            ProcessMemory.trim()
            guard let interval else {
                // A service that returns ends the group: wait for the shutdown instead.
                try? await gracefulShutdown()
                return
            }
            wait = interval
        }
    }
}
