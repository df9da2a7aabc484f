import ArgumentParser
import Config
import Foundation

extension HocVu {
    struct ConfigCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "config", abstract: "Check configuration files.", subcommands: [Check.self])

        struct Check: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Validate a site or hub configuration file; name the offending key and line.")
            @Argument(help: "The file, e.g. /etc/hocvu/site.toml.") var file: String
            @Flag(help: "Also check that the files it names (keys, trust file) exist and can be read.") var strict = false

            func run() throws {
                let config: DaemonConfig
                do { config = try DaemonConfig.load(path: file) } catch {
                    FileHandle.standardError.write(Data("\(error)\n".utf8))
                    throw ExitCode(2)
                }
                var files: [(String, String)] = []
                switch config {
                case .site(let c):
                    print("\(file): valid site configuration (hub \(c.hubEndpoint), database \(c.database))")
                    files = [("[node] keys", "\(c.keys)/identity.key"), ("[node] keys", "\(c.keys)/transport.key")] + (c.trust.map { [("[releases] trust", $0)] } ?? [])
                case .hub(let c):
                    print("\(file): valid hub configuration (listening on \(c.bind), database \(c.database))")
                    files = [("[node] keys", "\(c.keys)/identity.key"), ("[node] keys", "\(c.keys)/transport.key")] + (c.trust.map { [("[releases] trust", $0)] } ?? [])
                }
                guard strict else { return }
                var bad = false
                for (key, path) in files where !FileManager.default.isReadableFile(atPath: path) {
                    FileHandle.standardError.write(Data("\(file): \(key): \(path) does not exist or cannot be read by this user\n".utf8))
                    bad = true
                }
                if bad { throw ExitCode(2) }
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What a running site or hub daemon reports: connection, lag, unacknowledged batches, release, clock offset.")
        @Option(help: "The daemon's configuration file (to find its status file).") var config: String?
        @Option(help: "The status file directly.") var file: String?
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            var path = file ?? "/run/hocvu/status.json"
            if file == nil, let config {
                switch try? DaemonConfig.load(path: config) {
                case .site(let c)?: path = c.status
                case .hub(let c)?: path = c.status
                case nil: throw ValidationError("cannot read \(config); check it with `hocvu config check \(config)`")
                }
            }
            guard let data = FileManager.default.contents(atPath: path),
                  var object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
            else {
                throw ValidationError("no status at \(path): the daemon is not running (systemctl status hocvu-site / hocvu-hub)")
            }
            let updated = (object["updated_at"] as? Int64) ?? Int64((object["updated_at"] as? Double) ?? 0)
            let age = Int64(Date().timeIntervalSince1970 * 1_000) - updated
            object["status_age_ms"] = age
            // A status file not refreshed for 10 s means a wedged or killed daemon, whatever it says.
            object["daemon_responsive"] = age < 10_000
            if json {
                let out = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
                print(String(decoding: out, as: UTF8.self))
                return
            }
            if age >= 10_000 { print("WARNING: status is \(age / 1_000) s old: the daemon is not responding (see journalctl -u hocvu-*)") }
            func time(_ key: String) -> String {
                guard let ms = object[key] as? Int64 ?? (object[key] as? Double).map(Int64.init) else { return "never" }
                let ago = (Int64(Date().timeIntervalSince1970 * 1_000) - ms) / 1_000
                return "\(Date(timeIntervalSince1970: Double(ms) / 1_000)) (\(ago) s ago)"
            }
            for key in object.keys.sorted() where !["updated_at", "status_age_ms", "daemon_responsive"].contains(key) {
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
    do { config = try DaemonConfig.load(path: path) } catch { throw ValidationError("\(error)") }
    switch (config, role) {
    case (.site, "site"), (.hub, "hub"): return config
    case (.site, _): throw ValidationError("\(path): role is \"site\"; run it with `hocvu site run`")
    default: throw ValidationError("\(path): role is \"hub\"; run it with `hocvu hub run`")
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
