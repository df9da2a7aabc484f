import ArgumentParser
import Config
import Foundation
import Store

extension HocVu {
    struct ConfigCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "config", abstract: "Check configuration files.", subcommands: [Check.self])

        struct Check: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Validate a site or hub configuration file; name the offending key and line.",
                discussion: """
                    Prints "valid" and exits 0 only when nothing is wrong; otherwise prints each problem on stderr and \
                    exits 2. --strict also refuses the example's all-zero hub keys, missing or unreadable key and trust \
                    files, and key files that group or others may read (fix: chmod 600 FILE).
                    """)
            @Argument(help: "The file, e.g. /etc/hocvu/site.toml.") var file: String
            @Flag(help: "Also check the files it names (keys private and readable, trust file readable) and refuse placeholder keys.")
            var strict = false

            func run() throws {
                let config: DaemonConfig
                do { config = try DaemonConfig.load(path: file) } catch {
                    throw failing(ExitStatus.invalidInput, "\(error)")
                }
                let summary: String
                let keys: String
                let trust: String?
                switch config {
                case .site(let c):
                    summary = "\(file): valid site configuration (hub \(c.hubEndpoint), database \(c.database))"
                    (keys, trust) = (c.keys, c.trust)
                case .hub(let c):
                    summary = "\(file): valid hub configuration (listening on \(c.bind), database \(c.database))"
                    (keys, trust) = (c.keys, c.trust)
                }
                let problems = strict ? Self.strictProblems(file: file, keys: keys, trust: trust) : []
                guard problems.isEmpty else {
                    for p in problems { FileHandle.standardError.write(Data("\(p)\n".utf8)) }
                    throw ExitCode(ExitStatus.invalidInput)
                }
                print(summary)
            }

            /// What --strict refuses beyond syntax, each as one line naming the file and key.
            static func strictProblems(file: String, keys: String, trust: String?) -> [String] {
                let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
                var problems = DaemonConfig.placeholderProblems(in: text, file: file).map(\.description)
                for name in ["identity.key", "transport.key"] {
                    if let p = KeyFiles.problem(with: "\(keys)/\(name)") { problems.append("\(file): [node] keys: \(p)") }
                }
                if let trust, let p = readableProblem(trust, hint: "write it with `hocvu admin trust`, or copy the programme's trust.json there") {
                    problems.append("\(file): [releases] trust: \(p)")
                }
                return problems
            }

            static func readableProblem(_ path: String, hint: String) -> String? {
                var st = stat()
                guard stat(path, &st) == 0 else {
                    if errno == ENOENT { return "\(path) does not exist; \(hint)" }
                    if errno == EACCES { return KeyFiles.permissionDenied(path, owner: KeyFiles.nearestOwner(of: path)) }
                    return "cannot read \(path): \(String(cString: strerror(errno)))"
                }
                if access(path, R_OK) != 0 { return KeyFiles.permissionDenied(path, owner: FileOwner.of(path)) }
                return nil
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What a running site or hub daemon reports: connection, lag, unacknowledged batches, release, clock offset.",
            discussion: """
                Exit status (LSB, and usable as a Nagios check): 0 running and responsive; 3 not running (no status \
                file, or the process that wrote it is gone) or not responding (status not refreshed for 10 s); 4 status \
                unknown (the configuration or status file cannot be read, e.g. permission denied).
                """)
        @Option(help: "The daemon's configuration file (to find its status file).") var config: String?
        @Option(help: "The status file directly.") var file: String?
        @Flag(help: "Print JSON.") var json = false

        /// A status not refreshed for this long means a wedged or killed daemon, whatever it says.
        static let staleAfterMilliseconds: Int64 = 10_000

        func run() throws {
            var path = file ?? "/run/hocvu/status.json"
            var service = "hocvu-site"
            if file == nil, let config {
                do {
                    switch try DaemonConfig.load(path: config) {
                    case .site(let c): (path, service) = (c.status, "hocvu-site")
                    case .hub(let c): (path, service) = (c.status, "hocvu-hub")
                    }
                } catch {
                    throw failing(ExitStatus.unknown, "\(error); check it with `hocvu config check \(config)`")
                }
            }
            let reading = Self.read(path)
            let now = Int64(Date().timeIntervalSince1970 * 1_000)
            switch reading {
            case .missing:
                report(["daemon_running": false, "daemon_responsive": false, "status_file": path],
                       "not running: no status at \(path) (see systemctl status \(service) and journalctl -u \(service) -p warning)")
                throw ExitCode(ExitStatus.notRunning)
            case .unreadable(let why):
                throw failing(ExitStatus.unknown, why)
            case .status(var object):
                let updated = (object["updated_at"] as? Int64) ?? Int64((object["updated_at"] as? Double) ?? 0)
                let age = now - updated
                let pid = (object["pid"] as? Int).map(Int32.init)
                let alive = pid.map(Self.processExists) ?? true
                object["status_age_ms"] = age
                object["daemon_running"] = alive
                object["daemon_responsive"] = alive && age < Self.staleAfterMilliseconds
                if json {
                    let out = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
                    print(String(decoding: out, as: UTF8.self))
                } else if !alive {
                    print("not running: the daemon (pid \(pid!)) that wrote \(path) is gone; it was killed or crashed "
                        + "(see systemctl status \(service) and journalctl -u \(service) -p warning)")
                } else {
                    if age >= Self.staleAfterMilliseconds {
                        print("not responding: status is \(age / 1_000) s old (journalctl -u \(service) -p warning)")
                    }
                    Self.printHuman(object, now: now)
                }
                if !alive || age >= Self.staleAfterMilliseconds { throw ExitCode(ExitStatus.notRunning) }
            }
        }

        private func report(_ object: [String: Any], _ line: String) {
            if json, let out = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted]) {
                print(String(decoding: out, as: UTF8.self))
            } else {
                print(line)
            }
        }

        enum Reading {
            case missing
            case unreadable(String)
            case status([String: Any])
        }

        /// The status file, telling "not there" (the daemon is not running) from "may not read"
        /// (run as another user) and from a garbled file.
        static func read(_ path: String) -> Reading {
            let fd = open(path, O_RDONLY)
            guard fd >= 0 else {
                switch errno {
                case ENOENT: return .missing
                case EACCES:
                    let owner = FileOwner.of(path) ?? KeyFiles.nearestOwner(of: path)
                    let me = FileOwner.currentUser.name
                    return .unreadable("permission denied: \(me) may not read the status file \(path)"
                        + (owner.map { " (\($0)); run as \($0.name) or root, e.g. sudo -u \($0.name) hocvu status …" } ?? ""))
                default: return .unreadable("cannot read \(path): \(String(cString: strerror(errno)))")
                }
            }
            let data = FileHandle(fileDescriptor: fd, closeOnDealloc: true).readDataToEndOfFile()
            guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
                return .unreadable("\(path) is not a hocvu status file (not a JSON object)")
            }
            return .status(object)
        }

        /// Whether a process with this id exists (one of another user's counts: EPERM).
        static func processExists(_ pid: Int32) -> Bool {
            guard pid > 0 else { return false }
            return kill(pid, 0) == 0 || errno == EPERM
        }

        static func printHuman(_ object: [String: Any], now: Int64) {
            func time(_ key: String) -> String {
                guard let ms = object[key] as? Int64 ?? (object[key] as? Double).map(Int64.init) else { return "never" }
                return "\(Date(timeIntervalSince1970: Double(ms) / 1_000)) (\((now - ms) / 1_000) s ago)"
            }
            for key in object.keys.sorted() where !["updated_at", "status_age_ms", "daemon_responsive", "daemon_running"].contains(key) {
                let label = key.replacingOccurrences(of: "_", with: " ")
                if key == "last_heard_from_hub" { print("\(label): \(time(key))"); continue }
                print("\(label): \(object[key]!)")
            }
        }
    }
}

/// Reads a daemon configuration for `role`, turning its problems into the CLI's error message.
func readConfig(_ path: String, as role: String) throws -> DaemonConfig {
    let config: DaemonConfig
    do { config = try DaemonConfig.load(path: path) } catch { throw Failure("\(error)") }
    switch (config, role) {
    case (.site, "site"), (.hub, "hub"): return config
    case (.site, _): throw Failure("\(path): role is \"site\"; run it with `hocvu site run`")
    default: throw Failure("\(path): role is \"hub\"; run it with `hocvu hub run`")
    }
}

/// The options `hocvu site run` and `hocvu hub run` share; each overrides the configuration file.
struct DaemonOptions: ParsableArguments {
    @Option(help: "Configuration file (TOML); see config/site.toml and config/hub.toml.") var config: String?
    @Option(help: "The node's SQLite database.") var db: String?
    @Option(help: "Directory holding identity.key and transport.key.") var keys: String?
    @Option(help: "Trust file pinning the admin keys; without it no release is taken.") var trust: String?
    @Option(help: "Directory for release chunks.") var chunks: String?
    @Option(help: "Status file for `hocvu status`.") var status: String?
    @Option(help: "Prometheus endpoint, 127.0.0.1:PORT (loopback only), or off.") var metrics: String?

    /// Applies these options over `settings` (read from --config, or defaults without one).
    func apply<S: CommonSettings>(to settings: inout S) {
        settings.database = db ?? settings.database
        settings.keys = keys ?? settings.keys
        settings.trust = trust ?? settings.trust
        settings.chunks = chunks ?? settings.chunks
        // Without a config file (demo, tests) the status file sits next to the database and
        // metrics are off unless asked for.
        settings.status = status ?? (config == nil ? "\((settings.database as NSString).deletingLastPathComponent)/status.json" : settings.status)
        if let metrics { settings.metrics = metrics == "off" ? nil : metrics } else if config == nil { settings.metrics = nil }
    }
}
