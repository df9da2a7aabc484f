import ArgumentParser
import Config
import Foundation
import Store
#if canImport(CDispatch)
// Glibc's `struct stat` is owned by CDispatch once swift-nio and UnixSignals are linked in; with
// MemberImportVisibility a release (whole-module) build then needs that module imported here.
import CDispatch
#endif

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
                if json {
                    print(try Self.json(Missing(statusFile: path)))
                } else {
                    print("not running: no status at \(path) (see systemctl status \(service) and journalctl -u \(service) -p warning)")
                }
                throw ExitCode(ExitStatus.notRunning)
            case .unreadable(let why):
                throw failing(ExitStatus.unknown, why)
            case .status(let status):
                let age = now - status.updatedAt
                let alive = status.pid.map(Self.processExists) ?? true
                let responsive = alive && age < Self.staleAfterMilliseconds
                if json {
                    print(try Self.json(Observed(status: status, statusAgeMilliseconds: age, daemonRunning: alive, daemonResponsive: responsive)))
                } else if !alive {
                    print("not running: the daemon (pid \(status.pid!)) that wrote \(path) is gone; it was killed or crashed "
                        + "(see systemctl status \(service) and journalctl -u \(service) -p warning)")
                } else {
                    if age >= Self.staleAfterMilliseconds {
                        print("not responding: status is \(age / 1_000) s old (journalctl -u \(service) -p warning)")
                    }
                    try Self.printHuman(status, now: now)
                }
                if !responsive { throw ExitCode(ExitStatus.notRunning) }
            }
        }

        /// `--json` when there is no status file.
        struct Missing: Encodable {
            let statusFile: String
            let daemonRunning = false
            let daemonResponsive = false
            enum CodingKeys: String, CodingKey {
                case statusFile = "status_file", daemonRunning = "daemon_running", daemonResponsive = "daemon_responsive"
            }
        }

        /// `--json`: the daemon's status with what `hocvu status` observed of it.
        struct Observed: Encodable {
            let status: DaemonStatus
            let statusAgeMilliseconds: Int64
            let daemonRunning: Bool
            let daemonResponsive: Bool
            enum CodingKeys: String, CodingKey {
                case statusAgeMilliseconds = "status_age_ms", daemonRunning = "daemon_running", daemonResponsive = "daemon_responsive"
            }
            func encode(to encoder: any Encoder) throws {
                try status.encode(to: encoder)
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(statusAgeMilliseconds, forKey: .statusAgeMilliseconds)
                try c.encode(daemonRunning, forKey: .daemonRunning)
                try c.encode(daemonResponsive, forKey: .daemonResponsive)
            }
        }

        static func json(_ value: some Encodable) throws -> String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            return String(decoding: try encoder.encode(value), as: UTF8.self)
        }

        enum Reading {
            case missing
            case unreadable(String)
            case status(DaemonStatus)
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
            do { return .status(try DaemonStatus.decode(data)) } catch {
                return .unreadable("\(path) is not a hocvu status file (\(error))")
            }
        }

        /// Whether a process with this id exists (one of another user's counts: EPERM).
        static func processExists(_ pid: Int32) -> Bool {
            guard pid > 0 else { return false }
            return kill(pid, 0) == 0 || errno == EPERM
        }

        /// One line per fact, sorted by key, as `label: value`.
        static func printHuman(_ status: DaemonStatus, now: Int64) throws {
            // The keys are the status file's (docs/operations.md), so the two always agree.
            let facts = try JSONDecoder().decode([String: Fact].self, from: try status.encoded())
            for (key, fact) in facts.sorted(by: { $0.key < $1.key }) where key != "updated_at" {
                let label = key.replacingOccurrences(of: "_", with: " ")
                if key == "last_heard_from_hub", case .site(let site) = status.report, let ms = site.lastHeardFromHub {
                    print("\(label): \(Date(timeIntervalSince1970: Double(ms) / 1_000)) (\((now - ms) / 1_000) s ago)")
                } else {
                    print("\(label): \(fact)")
                }
            }
        }

        /// A status value as a person reads it: `true`, `12`, `malformed=2 out_of_range=1`, `70: malformed=2`.
        indirect enum Fact: Decodable, CustomStringConvertible {
            case bool(Bool), integer(Int64), number(Double), text(String), map([String: Fact])

            init(from decoder: any Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let v = try? c.decode(Bool.self) { self = .bool(v) }
                else if let v = try? c.decode(Int64.self) { self = .integer(v) }
                else if let v = try? c.decode(Double.self) { self = .number(v) }
                else if let v = try? c.decode(String.self) { self = .text(v) }
                else { self = .map(try c.decode([String: Fact].self)) }
            }

            var description: String {
                switch self {
                case .bool(let v): "\(v)"
                case .integer(let v): "\(v)"
                case .number(let v): String(format: "%.2f", v)
                case .text(let v): v
                case .map(let m) where m.isEmpty: "none"
                case .map(let m):
                    m.sorted { $0.key < $1.key }.map { key, value in
                        if case .map = value { "\(key): \(value)" } else { "\(key)=\(value)" }
                    }.joined(separator: m.values.contains { if case .map = $0 { true } else { false } } ? "; " : " ")
                }
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
