import Foundation
import ArgumentParser
import Logging
import Store
import Synchronization

/// The systemd notify protocol: one datagram per message to `$NOTIFY_SOCKET` (a path, or an
/// abstract socket when it starts with `@`). No libsystemd; a no-op when not run by systemd.
struct SystemdNotifier {
    let socketPath: String?
    /// Half of `WatchdogSec=`, as systemd recommends; nil when no watchdog is configured.
    let watchdogInterval: Double?

    init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        socketPath = environment["NOTIFY_SOCKET"]
        let pidOK = environment["WATCHDOG_PID"].map { Int32($0) == getpid() } ?? true
        watchdogInterval = pidOK ? environment["WATCHDOG_USEC"].flatMap(Double.init).map { $0 / 2_000_000 } : nil
    }

    @discardableResult
    func notify(_ text: String) -> Bool {
        guard let socketPath, !socketPath.isEmpty else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(socketPath.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }  // abstract namespace
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return false }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in raw.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        let message = Array(text.utf8)
        let sent = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, message, message.count, 0, $0, length) }
        }
        return sent == message.count
    }
}

/// Runs a started engine until SIGTERM/SIGINT: READY=1 once started, WATCHDOG=1 only while the
/// engine's loop is alive (a wedged database or disk stops the pings and systemd restarts us),
/// STATUS= and a status file each second, SIGHUP → `reload`, and exit status 1 if the engine
/// stopped by itself (e.g. a store error) so `Restart=always` brings it back — or 78 if the hub
/// refused this site for good, which no restart can mend.
struct Daemon {
    let logger: Logger
    let statusPath: String?
    let alive: () -> Bool
    let finished: () -> Bool
    /// A one-line summary for systemd and the JSON for `hocvu status`.
    let status: () -> (summary: String, json: [String: Any])
    let reload: () -> Void
    let stop: () -> Void
    var metrics: DaemonMetrics? = nil
    /// Why the peer refused this node for good (a revoked site), if it did: no restart can help.
    var refusedForGood: () -> String? = { nil }

    /// Exit status for "the hub refused this site for good" (sysexits EX_CONFIG). The unit's
    /// `RestartPreventExitStatus=78` keeps systemd from restarting a revoked site every 5 s forever.
    static let refusedExitStatus: Int32 = 78

    func run() -> Int32 {
        let notifier = SystemdNotifier()
        let requested = Atomic<Int>(0)  // 1 = stop, 2 = reload
        var sources = [any DispatchSourceSignal]()
        let queue = DispatchQueue(label: "hocvu.signals")
        for (sig, action) in [(SIGTERM, 1), (SIGINT, 1), (SIGHUP, 2)] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            s.setEventHandler { requested.store(action, ordering: .relaxed) }
            s.resume()
            sources.append(s)
        }
        notifier.notify("READY=1\nSTATUS=started")
        var lastPing = Date.distantPast
        var lastStatus = Date.distantPast
        while true {
            switch requested.exchange(0, ordering: .relaxed) {
            case 1:
                notifier.notify("STOPPING=1")
                logger.info("Stopping: finishing the transaction in flight")
                stop()
                removeStatus()
                return 0
            case 2:
                notifier.notify("RELOADING=1\nMONOTONIC_USEC=\(DispatchTime.now().uptimeNanoseconds / 1_000)")
                reload()
                notifier.notify("READY=1")
            default:
                break
            }
            if finished(), let reason = refusedForGood() {
                logger.critical(
                    "The hub refused this site for good: \(reason). Sync is stopped and the service will not restart by itself. Ask the hub administrator to enroll this site again (hocvu hub enroll), then: systemctl restart hocvu-site")
                removeStatus()
                return Self.refusedExitStatus
            }
            if finished() {
                logger.critical("The sync loop stopped on an error (see above); exiting so the service manager restarts hocvu")
                removeStatus()
                return 1
            }
            let now = Date()
            if let interval = notifier.watchdogInterval, now.timeIntervalSince(lastPing) >= interval, alive() {
                notifier.notify("WATCHDOG=1")
                lastPing = now
            }
            if now.timeIntervalSince(lastStatus) >= 1 {
                lastStatus = now
                let s = status()
                notifier.notify("STATUS=\(s.summary)")
                writeStatus(s.json)
                metrics?.update(from: s.json)
            }
            usleep(100_000)
        }
    }

    private func writeStatus(_ json: [String: Any]) {
        guard let statusPath else { return }
        var object = json
        object["updated_at"] = Int64(Date().timeIntervalSince1970 * 1_000)
        object["pid"] = Int(getpid())
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        let dir = (statusPath as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // Atomic replace: `hocvu status` never reads half a file.
        try? data.write(to: URL(fileURLWithPath: statusPath), options: .atomic)
    }

    private func removeStatus() {
        if let statusPath { try? FileManager.default.removeItem(atPath: statusPath) }
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

    /// Starts the loopback metrics endpoint if configured.
    static func startMetrics(_ address: String?, role: String, logger: Logger) throws -> DaemonMetrics? {
        guard let address else { return nil }
        let m = DaemonMetrics(role: role)
        _ = try MetricsListener.start(address: address, metrics: m, logger: logger)
        return m
    }
}
