import Foundation
import Testing

@testable import hocvu

/// The real `hocvu hub run` process, supervised the way systemd does it: a notify socket,
/// a watchdog interval, SIGHUP and SIGTERM.
@Suite(.serialized) struct DaemonTests {
    /// A datagram socket standing in for systemd's `$NOTIFY_SOCKET`.
    final class NotifySocket {
        let path: String
        let fd: Int32
        init(path: String) {
            self.path = path
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
            _ = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            var tv = timeval(tv_sec: 0, tv_usec: 200_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }
        deinit { close(fd); unlink(path) }

        /// Messages received within `seconds`.
        func messages(for seconds: Double) -> [String] {
            var out = [String]()
            let end = Date().addingTimeInterval(seconds)
            var buffer = [UInt8](repeating: 0, count: 4_096)
            while Date() < end {
                let n = recv(fd, &buffer, buffer.count, 0)
                if n > 0 { out.append(String(decoding: buffer[0..<n], as: UTF8.self)) }
            }
            return out
        }
    }

    func hocvu(_ args: [String], env: [String: String] = [:]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("hocvu")
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        return p
    }

    @Test func notifyWatchdogStatusAndPromptStop() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hocvu-daemon-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let metricsPort = Int.random(in: 20_000...40_000)
        let keygen = try hocvu(["keygen", "--dir", "\(dir)/keys"])
        keygen.waitUntilExit()
        let notify = NotifySocket(path: "\(dir)/notify")
        let hub = try hocvu(
            ["hub", "run", "--db", "\(dir)/hub.sqlite", "--keys", "\(dir)/keys", "--bind", "tcp://127.0.0.1:*", "--status", "\(dir)/status.json",
             "--metrics", "127.0.0.1:\(metricsPort)"],
            env: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000"])
        let seen = notify.messages(for: 3)
        #expect(seen.contains { $0.hasPrefix("READY=1") })
        #expect(seen.filter { $0 == "WATCHDOG=1" }.count >= 3, "watchdog pings every 0.5 s while the loop is alive")
        #expect(seen.contains { $0.hasPrefix("STATUS=0 sites connected") })

        let status = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/status.json"))) as? [String: Any]
        #expect(status?["role"] as? String == "hub")
        #expect(status?["sites_connected"] as? Int == 0)

        let scrape = httpGet(port: metricsPort, path: "/metrics")
        #expect(scrape.hasPrefix("HTTP/1.1 200"))
        #expect(scrape.contains("hocvu_hub_sites_connected 0"))
        #expect(scrape.contains("# TYPE hocvu_hub_changes_merged_total counter"))
        #expect(scrape.contains("# HELP hocvu_hub_changes_merged_total "))
        #expect(scrape.contains("# HELP hocvu_hub_sites_connected "))
        #expect(scrape.contains("hocvu_build_info{") && scrape.contains("version=\"\(HocVu.version)\""))
        #expect(httpGet(port: metricsPort, path: "/").hasPrefix("HTTP/1.1 404"))

        kill(hub.processIdentifier, SIGHUP)  // nothing to reload without a trust file; must keep running
        usleep(300_000)
        #expect(hub.isRunning)
        let t0 = Date()
        kill(hub.processIdentifier, SIGTERM)
        hub.waitUntilExit()
        #expect(Date().timeIntervalSince(t0) < 5)
        #expect(hub.terminationStatus == 0)
        let after = notify.messages(for: 0.3)
        #expect(after.contains { $0.hasPrefix("RELOADING=1") })
        #expect(after.contains("STOPPING=1"))
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/status.json"), "a stopped daemon leaves no stale status")
    }

    /// A loopback TCP port held open by this process (for a port conflict), and its file descriptor.
    func holdLoopbackPort() throws -> (port: Int, fd: Int32) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && listen(fd, 1) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        try #require(bound)
        return (Int(UInt16(bigEndian: addr.sin_port)), fd)
    }

    /// READY=1 only once the metrics endpoint is bound: a port in use fails the start (status 1)
    /// and systemd never hears READY, instead of a daemon that runs without its metrics.
    @Test func aMetricsPortInUseFailsTheStartBeforeReady() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hocvu-daemon-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let held = try holdLoopbackPort()
        defer { close(held.fd) }
        let keygen = try hocvu(["keygen", "--dir", "\(dir)/keys"])
        keygen.waitUntilExit()
        let notify = NotifySocket(path: "\(dir)/notify")
        let hub = try hocvu(
            ["hub", "run", "--db", "\(dir)/hub.sqlite", "--keys", "\(dir)/keys", "--bind", "tcp://127.0.0.1:*",
             "--metrics", "127.0.0.1:\(held.port)"],
            env: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000"])
        let seen = notify.messages(for: 3)
        if hub.isRunning { kill(hub.processIdentifier, SIGKILL) }
        hub.waitUntilExit()
        #expect(hub.terminationStatus == 1, "a metrics port in use fails the start")
        #expect(!seen.contains { $0.hasPrefix("READY=1") }, "READY=1 sent without metrics: \(seen)")
        #expect(!seen.contains("WATCHDOG=1"))
    }

    @Test func aPortalPortInUseFailsTheSiteStartBeforeReady() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hocvu-portal-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let held = try holdLoopbackPort()
        defer { close(held.fd) }
        let keygen = try hocvu(["keygen", "--dir", "\(dir)/keys"])
        keygen.waitUntilExit()
        let notify = NotifySocket(path: "\(dir)/notify")
        // The hub need not exist: a site starts and keeps trying; only its portal's port matters here.
        let site = try hocvu(
            ["site", "run", "--db", "\(dir)/site.sqlite", "--keys", "\(dir)/keys", "--hub", "tcp://127.0.0.1:9",
             "--hub-key", String(repeating: "ab", count: 32), "--metrics", "off", "--portal", "127.0.0.1:\(held.port)"],
            env: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000"])
        let seen = notify.messages(for: 3)
        if site.isRunning { kill(site.processIdentifier, SIGKILL) }
        site.waitUntilExit()
        #expect(site.terminationStatus == 1, "a portal port in use fails the start")
        #expect(!seen.contains { $0.hasPrefix("READY=1") }, "READY=1 sent before the portal listened: \(seen)")
    }

    @Test func theHubServesItsDashboardAsOneMoreServiceOfTheGroup() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hocvu-dash-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = Int.random(in: 40_001...60_000)
        let keygen = try hocvu(["keygen", "--dir", "\(dir)/keys"])
        keygen.waitUntilExit()
        let hub = try hocvu(
            ["hub", "run", "--db", "\(dir)/hub.sqlite", "--keys", "\(dir)/keys", "--bind", "tcp://127.0.0.1:*", "--status", "\(dir)/status.json",
             "--dashboard", "127.0.0.1:\(port)"])
        var form = ""
        for _ in 0..<100 where !form.hasPrefix("HTTP/1.1 200") {
            usleep(100_000)
            form = httpGet(port: port, path: "/sign-in")
        }
        #expect(form.hasPrefix("HTTP/1.1 200") && form.contains("<html lang=\"vi\">") && form.contains("name=\"csrf\""))
        let national = httpGet(port: port, path: "/national")
        #expect(national.hasPrefix("HTTP/1.1 303") && national.lowercased().contains("location: /sign-in"))
        kill(hub.processIdentifier, SIGTERM)
        hub.waitUntilExit()
        #expect(hub.terminationStatus == 0)
        #expect(httpGet(port: port, path: "/sign-in") == "connect failed", "the dashboard stops with the hub")
    }

    /// Runs a short command to its end and returns its standard output.
    func output(_ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("hocvu")
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    func key(_ name: String, in keygenOutput: String) throws -> String {
        let line = try #require(keygenOutput.split(separator: "\n").first { $0.hasPrefix(name + " ") })
        return String(try #require(line.split(separator: " ").last))
    }

    /// A revoked site must not be restarted by systemd every 5 s forever: it exits 78, which the
    /// unit's RestartPreventExitStatus names, and says why. On the way, `level = "debug"` shows
    /// the connection, each upload at the site and each merge at the hub.
    @Test func revokedSiteExitsForGoodAndDebugLogsShowSync() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hocvu-revoked-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let hubKeys = try output(["keygen", "--dir", "\(dir)/hub-keys"])
        let siteKeys = try output(["keygen", "--dir", "\(dir)/site-keys"])
        let enroll = try hocvu(["hub", "enroll", "--db", "\(dir)/hub.sqlite", "--keys", "\(dir)/hub-keys", "--commune", "70",
                                "--identity", try key("identity", in: siteKeys), "--transport", try key("transport", in: siteKeys)])
        enroll.waitUntilExit()
        try #require(enroll.terminationStatus == 0)
        let learners = (0..<3).map {
            #"{"type":"learner","national_id":"\#(String(format: "0017%08d", $0))","full_name":"Đỗ Văn Khánh","role":"civil_servant","unit":"UBND xã","home_commune":70}"#
        }.joined(separator: "\n") + "\n"
        try learners.write(toFile: "\(dir)/learners.jsonl", atomically: true, encoding: .utf8)

        let port = Int.random(in: 20_000...40_000)
        try """
            role = "hub"
            [node]
            database = "\(dir)/hub.sqlite"
            keys = "\(dir)/hub-keys"
            [listen]
            endpoint = "tcp://127.0.0.1:\(port)"
            [log]
            level = "debug"
            """.write(toFile: "\(dir)/hub.toml", atomically: true, encoding: .utf8)
        try """
            role = "site"
            [node]
            database = "\(dir)/site.sqlite"
            keys = "\(dir)/site-keys"
            status = "\(dir)/site-status.json"
            [hub]
            endpoint = "tcp://127.0.0.1:\(port)"
            transport_key = "\(try key("transport", in: hubKeys))"
            identity_key = "\(try key("identity", in: hubKeys))"
            [log]
            level = "debug"
            """.write(toFile: "\(dir)/site.toml", atomically: true, encoding: .utf8)
        FileManager.default.createFile(atPath: "\(dir)/hub.log", contents: nil)
        let hub = Process()
        hub.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("hocvu")
        hub.arguments = ["hub", "run", "--config", "\(dir)/hub.toml"]
        hub.standardError = FileHandle(forWritingAtPath: "\(dir)/hub.log")
        hub.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try hub.run()
        defer { if hub.isRunning { kill(hub.processIdentifier, SIGKILL) } }
        let site = Process()
        site.executableURL = hub.executableURL
        site.arguments = ["site", "run", "--config", "\(dir)/site.toml"]
        let stderr = Pipe()
        site.standardError = stderr
        site.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try site.run()
        defer { if site.isRunning { kill(site.processIdentifier, SIGKILL) } }
        // The running site created its database; import into it while it runs (as an operator does).
        let created = Date().addingTimeInterval(20)
        while Date() < created, !FileManager.default.fileExists(atPath: "\(dir)/site-status.json") { usleep(100_000) }
        let imported = try hocvu(["site", "import", "--db", "\(dir)/site.sqlite", "--keys", "\(dir)/site-keys", "\(dir)/learners.jsonl"])
        imported.waitUntilExit()
        try #require(imported.terminationStatus == 0)
        // Wait until the hub has merged the site's upload, then revoke the site while both run.
        let merged = Date().addingTimeInterval(30)
        var hubLog = ""
        while Date() < merged, !hubLog.contains("changes_merged=3") {
            usleep(200_000)
            hubLog = (try? String(contentsOfFile: "\(dir)/hub.log", encoding: .utf8)) ?? ""
        }
        try #require(hubLog.contains("changes_merged=3"), "the hub's debug log shows the merge of the 3 imported learners:\n\(hubLog)")
        let revoke = try hocvu(["hub", "revoke", "--db", "\(dir)/hub.sqlite", "--keys", "\(dir)/hub-keys", "--commune", "70"])
        revoke.waitUntilExit()
        try #require(revoke.terminationStatus == 0)
        let deadline = Date().addingTimeInterval(20)
        while site.isRunning, Date() < deadline { usleep(100_000) }
        try #require(!site.isRunning, "a revoked site stops by itself")
        #expect(site.terminationStatus == 78)
        let log = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("refused this site for good"))
        #expect(log.contains("systemctl restart hocvu-site"))
        #expect(log.contains("Connected to the hub"))
        #expect(log.contains("Uploaded") && log.contains("changes=3"), "the site's debug log shows its upload:\n\(log)")
        #expect(!log.contains("Đỗ Văn Khánh") && !hubLog.contains("Đỗ Văn Khánh") && !log.contains("001700000000"), "nothing personal in logs")
        #expect(hub.isRunning, "the hub serves on")
    }

    func httpGet(port: Int, path: String) -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { return "connect failed" }
        // Read to the end: ask the server to close after its response (HTTP/1.1 keeps connections open).
        let request = Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8)
        _ = send(fd, request, request.count, 0)
        var out = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 8_192)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    @Test func notifierIsSilentOutsideSystemd() {
        let n = SystemdNotifier(environment: [:])
        #expect(n.notify("READY=1") == false)
        #expect(n.watchdogInterval == nil)
        #expect(SystemdNotifier(environment: ["WATCHDOG_USEC": "20000000"]).watchdogInterval == 10)
        #expect(SystemdNotifier(environment: ["WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"]).watchdogInterval == nil)
    }
}
