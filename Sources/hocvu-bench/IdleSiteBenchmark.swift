import Foundation

/// An idle site: a real `hocvu site run` connected over CURVE on `tcp://127.0.0.1` to a real
/// `hocvu hub run`, with nothing to do, configured like `config/site.toml` (status file, metrics
/// endpoint, trust file, pinned hub identity). Every few seconds it samples the *site* process from
/// `/proc`: resident memory (VmRSS, its peak VmHWM, anonymous and file-backed parts), threads, CPU
/// time (user + system) and context switches (each one a wake-up of one of its threads).
///
/// Several binaries (`--hocvu` and each `--baseline`) run side by side in the same minutes, each
/// with its own hub, keys and files, so a busy neighbour on the machine weighs on all alike.
struct IdleSiteBenchmark {
    struct Binary {
        let label: String
        let path: String
    }

    let binaries: [Binary]
    let seconds: Double
    let sampleSeconds: Double
    /// CPU and wake-ups are counted from this point on (start-up, the database check and the
    /// handshake are not idling).
    let warmupSeconds: Double
    let directory: String

    struct Sample {
        var at = 0.0
        var rssKiB = 0, hwmKiB = 0, anonKiB = 0, fileKiB = 0
        var threads = 0
        /// User + system CPU time of every thread, in clock ticks.
        var cpuTicks = 0
        /// Voluntary + involuntary context switches of every live thread.
        var switches = 0
    }

    struct Report {
        let binary: Binary
        var samples: [Sample] = []
        /// The site reported itself connected to its hub in its status file at the end.
        var connected = false
        var ticksPerSecond = 100.0

        var last: Sample { samples.last ?? Sample() }
        /// The sample nearest to `seconds` after the start.
        func at(_ seconds: Double) -> Sample {
            samples.min(by: { abs($0.at - seconds) < abs($1.at - seconds) }) ?? Sample()
        }
        /// Share of one core used between the end of the warm-up and the last sample, in %.
        func cpuPercent(after warmup: Double) -> Double {
            let a = at(warmup), b = last
            guard b.at > a.at else { return 0 }
            return Double(b.cpuTicks - a.cpuTicks) / ticksPerSecond / (b.at - a.at) * 100
        }
        /// Context switches (wake-ups) per second over the same window.
        func wakeupsPerSecond(after warmup: Double) -> Double {
            let a = at(warmup), b = last
            guard b.at > a.at else { return 0 }
            return Double(b.switches - a.switches) / (b.at - a.at)
        }
    }

    /// One binary's running pair of processes and its files.
    private struct Rig {
        let binary: Binary
        let dir: String
        let hub: Process
        let site: Process
        let status: String
    }

    func run(log: (String) -> Void) throws -> [Report] {
        let root = "\(directory)/hocvu-bench-idle"
        try? FileManager.default.removeItem(atPath: root)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        var rigs = [Rig]()
        defer {
            for r in rigs {
                for p in [r.site, r.hub] where p.isRunning {
                    p.terminate()
                    p.waitUntilExit()
                }
            }
        }
        for (i, b) in binaries.enumerated() {
            log("starting hub and site from \(b.path) (\(b.label))…")
            rigs.append(try start(b, in: "\(root)/\(i)"))
        }
        let clockTicks = Double(sysconf(Int32(_SC_CLK_TCK)))
        var reports = binaries.map { Report(binary: $0, ticksPerSecond: clockTicks) }
        let t0 = ContinuousClock.now
        var nextLog = 60.0
        while true {
            let elapsed = (ContinuousClock.now - t0).seconds
            for (i, r) in rigs.enumerated() {
                guard r.site.isRunning else {
                    throw BenchFailure("the site from \(r.binary.path) exited (status \(r.site.terminationStatus)); see its log above")
                }
                var s = sample(pid: r.site.processIdentifier)
                s.at = elapsed
                reports[i].samples.append(s)
            }
            if elapsed >= nextLog {
                log(reports.map { "\($0.binary.label): RSS \($0.last.rssKiB / 1_024) MiB" }.joined(separator: ", ") + " at \(Int(elapsed)) s")
                nextLog += 60
            }
            if elapsed >= seconds { break }
            Thread.sleep(forTimeInterval: min(sampleSeconds, max(0.1, seconds - elapsed)))
        }
        for (i, r) in rigs.enumerated() { reports[i].connected = Self.reportsConnected(statusFile: r.status) }
        for r in rigs where !Self.reportsConnected(statusFile: r.status) {
            let tail = (try? String(contentsOfFile: "\(r.dir)/site.log", encoding: .utf8))?.split(separator: "\n").suffix(10).joined(separator: "\n") ?? ""
            log("\(r.binary.label): the site is not connected at the end; its log ends with:\n\(tail)")
        }
        return reports
    }

    /// Keys, trust file and enrollment made by the binary under test, then its hub and its site.
    private func start(_ b: Binary, in dir: String) throws -> Rig {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        func hocvu(_ args: [String]) throws -> String {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: b.path)
            p.arguments = args
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try p.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw BenchFailure("\(b.path) \(args.joined(separator: " ")) failed (status \(p.terminationStatus))") }
            return text
        }
        func key(_ printed: String, _ name: String) throws -> String {
            guard let line = printed.split(separator: "\n").first(where: { $0.hasPrefix(name) }),
                  let hex = line.split(separator: " ", omittingEmptySubsequences: true).last
            else { throw BenchFailure("`hocvu keygen` printed no \(name) key") }
            return String(hex)
        }
        let hubKeys = try hocvu(["keygen", "--dir", "\(dir)/hub-keys"])
        let siteKeys = try hocvu(["keygen", "--dir", "\(dir)/site-keys"])
        _ = try hocvu(["admin", "keygen", "--dir", "\(dir)/admin", "--name", "bench admin"])
        _ = try hocvu(["admin", "trust", "--threshold", "1", "--out", "\(dir)/trust.json", "\(dir)/admin/admin.pub.json"])
        // A commune code the bundled list holds (the first province's first commune).
        _ = try hocvu([
            "hub", "enroll", "--db", "\(dir)/hub.sqlite", "--keys", "\(dir)/hub-keys", "--commune", "4",
            "--identity", try key(siteKeys, "identity"), "--transport", try key(siteKeys, "transport"),
        ])
        let port = Int.random(in: 30_000...45_000)
        let endpoint = "tcp://127.0.0.1:\(port)"
        let hub = Process()
        hub.executableURL = URL(fileURLWithPath: b.path)
        hub.arguments = [
            "hub", "run", "--db", "\(dir)/hub.sqlite", "--keys", "\(dir)/hub-keys", "--bind", endpoint,
            "--trust", "\(dir)/trust.json", "--chunks", "\(dir)/hub-chunks",
        ]
        FileManager.default.createFile(atPath: "\(dir)/hub.log", contents: nil)
        hub.standardError = FileHandle(forWritingAtPath: "\(dir)/hub.log")
        try hub.run()
        usleep(500_000)
        let site = Process()
        site.executableURL = URL(fileURLWithPath: b.path)
        let status = "\(dir)/site-status.json"
        site.arguments = [
            "site", "run", "--db", "\(dir)/site.sqlite", "--keys", "\(dir)/site-keys", "--hub", endpoint,
            "--hub-key", try key(hubKeys, "transport"), "--hub-identity", try key(hubKeys, "identity"),
            "--trust", "\(dir)/trust.json", "--chunks", "\(dir)/site-chunks", "--status", status,
            "--metrics", "127.0.0.1:\(port + 10_000)",
        ]
        FileManager.default.createFile(atPath: "\(dir)/site.log", contents: nil)
        site.standardError = FileHandle(forWritingAtPath: "\(dir)/site.log")
        site.standardOutput = FileHandle(forWritingAtPath: "\(dir)/site.log")
        try site.run()
        return Rig(binary: b, dir: dir, hub: hub, site: site, status: status)
    }

    /// Memory from /proc/PID/status, CPU ticks from /proc/PID/stat (whole process), context switches
    /// from every thread's status.
    private func sample(pid: Int32) -> Sample {
        var s = Sample()
        func kib(_ text: String, _ field: String) -> Int {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }) else { return 0 }
            // "VmRSS:\t   40104 kB", "Threads:\t9": the value is the first field after the colon.
            return Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "") ?? 0
        }
        if let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) {
            s.rssKiB = kib(status, "VmRSS")
            s.hwmKiB = kib(status, "VmHWM")
            s.anonKiB = kib(status, "RssAnon")
            s.fileKiB = kib(status, "RssFile")
            s.threads = kib(status, "Threads")
        }
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")")
        {
            // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 13 { s.cpuTicks = (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0) }
        }
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        for t in tasks {
            guard let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(t)/status", encoding: .utf8) else { continue }
            s.switches += kib(text, "voluntary_ctxt_switches") + kib(text, "nonvoluntary_ctxt_switches")
        }
        return s
    }

    /// Whether the site's status file (`hocvu status`'s source) says it is connected.
    static func reportsConnected(statusFile: String) -> Bool {
        guard let data = FileManager.default.contents(atPath: statusFile),
              let json = try? JSONSerialization.jsonObject(with: data)
        else { return false }
        func find(_ v: Any) -> Bool {
            if let d = v as? [String: Any] {
                if let c = d["connected"] as? Bool { return c }
                return d.values.contains(where: find)
            }
            return false
        }
        return find(json)
    }
}
