public import Foundation
import TOMLKit

/// A configuration problem, named the way an operator fixes it: file, line, key, what is wrong.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public var file: String
    public var line: Int?
    public var key: String?
    public var problem: String
    public init(file: String, line: Int? = nil, key: String? = nil, problem: String) {
        self.file = file; self.line = line; self.key = key; self.problem = problem
    }
    public var description: String {
        let place = line.map { "\(file):\($0)" } ?? file
        return key.map { "\(place): \($0): \(problem)" } ?? "\(place): \(problem)"
    }
}

/// What the site and hub daemons configure alike: their files, releases, status and metrics.
public protocol CommonSettings {
    var database: String { get set }
    var keys: String { get set }
    var trust: String? { get set }
    var chunks: String { get set }
    var status: String { get set }
    var metrics: String? { get set }
}

/// The site daemon's settings (config/site.toml; docs/configuration.md).
public struct SiteConfig: Equatable, Sendable, CommonSettings {
    public var database = "/var/lib/hocvu/hocvu.sqlite"
    public var keys = "/etc/hocvu/keys"
    public var hubEndpoint = ""
    /// Every hub process the site may use, in order of preference (`[hub] endpoints`); the first is
    /// ``hubEndpoint``. One shared transport and identity key (docs/multi-hub.md).
    public var hubEndpoints: [String] = []
    public var hubTransportKey = ""
    public var hubIdentityKey: String?
    public var trust: String?
    public var chunks = "/var/lib/hocvu/chunks"
    public var fetchRate: Int?
    public var status = "/run/hocvu/status.json"
    public var logLevel = "info"
    /// Prometheus scrape endpoint, loopback only; nil = off.
    public var metrics: String? = "127.0.0.1:9464"
    /// The learner portal and learning-app API (`[portal]`); off unless enabled.
    public var portal = PortalConfig()
    public init() {}
}

/// The hub's settings (config/hub.toml).
public struct HubConfig: Equatable, Sendable, CommonSettings {
    public var database = "/var/lib/hocvu/hocvu.sqlite"
    public var keys = "/etc/hocvu/keys"
    public var bind = "tcp://0.0.0.0:7400"
    public var trust: String?
    public var chunks = "/var/lib/hocvu/chunks"
    public var maxTransfers = 64
    public var status = "/run/hocvu/status.json"
    public var logLevel = "info"
    public var metrics: String? = "127.0.0.1:9465"
    /// The web dashboard (`[dashboard]`); off unless enabled.
    public var dashboard = DashboardConfig()
    /// Where the hub keeps what it shares with other hub processes (`[store]`).
    public var store = StoreConfig()
    public init() {}
}

/// `[store]` in hub.toml: SQLite alone (one hub), or PostgreSQL shared by several hub processes
/// (docs/multi-hub.md). The password is read from a file only the service user may read.
public struct StoreConfig: Equatable, Sendable {
    public enum Backend: String, Sendable { case sqlite, postgresql }
    public var backend = Backend.sqlite
    /// A host name or address, or an absolute directory holding the server's Unix socket.
    public var host = "/var/run/postgresql"
    public var port = 5432
    public var database = "hocvu"
    public var user = "hocvu"
    public var passwordFile: String?
    public var poolSize = 8
    public var tls = "prefer"
    public var timeoutSeconds = 10
    /// This hub's name in the shared log (each batch records the hub that appended it).
    public var name: String?
    public init() {}
}

/// The hub's web dashboard (`[dashboard]` in hub.toml; docs/configuration.md).
///
/// hocvu serves the dashboard over plain HTTP on loopback only; HTTPS is a reverse proxy's job on
/// the same host (docs/operations.md, "Dashboard"): building TLS into hocvu would compile BoringSSL
/// into every build and every .deb for one page server.
public struct DashboardConfig: Equatable, Sendable {
    public var enabled = false
    /// `127.x.x.x:PORT`: loopback only, so passwords and cookies never cross a network in clear.
    public var listen = "127.0.0.1:9480"
    /// True when viewers reach the dashboard through an HTTPS reverse proxy: cookies are then
    /// marked `Secure` (a browser sends them over HTTPS only).
    public var behindTLSProxy = false
    public init() {}

    /// The host and port of `listen`, nil when it is not `IPv4:PORT`.
    public static func hostAndPort(_ listen: String) -> (host: String, port: Int)? {
        let parts = listen.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let port = Int(parts[1]), (1...65_535).contains(port) else { return nil }
        let octets = parts[0].split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4, octets.allSatisfy({ $0.count <= 3 && UInt8($0) != nil }) else { return nil }
        return (String(parts[0]), port)
    }

    public static func isLoopback(_ host: String) -> Bool { host.hasPrefix("127.") }
}

/// A site's learner portal (`[portal]` in site.toml; docs/configuration.md, docs/portal.md).
///
/// Unlike the hub's dashboard it may listen on the commune LAN's address: learners' phones and
/// office PCs reach it there. It speaks plain HTTP; where the LAN is not trusted (open Wi-Fi), put an
/// HTTPS reverse proxy in front and set `tls_proxy = true` (docs/portal.md, "Security").
public struct PortalConfig: Equatable, Sendable {
    public var enabled = false
    /// `IPv4:PORT`: `0.0.0.0:8480` for every interface, the LAN address, or loopback behind a proxy.
    public var listen = "127.0.0.1:8480"
    public var behindTLSProxy = false
    public init() {}
}

public enum DaemonConfig: Equatable, Sendable {
    case site(SiteConfig)
    case hub(HubConfig)

    /// Reads and checks a file; the first problem found is thrown.
    public static func load(path: String) throws(ConfigError) -> DaemonConfig {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, problem: "cannot read the file as UTF-8 text (does it exist, and may this user read it?)")
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws(ConfigError) -> DaemonConfig {
        let root: TOMLTable
        do { root = try TOMLTable(string: text) } catch let e as TOMLParseError {
            throw ConfigError(file: file, line: e.source.begin.line, problem: "not valid TOML: \(e.description)")
        } catch {
            throw ConfigError(file: file, problem: "not valid TOML: \(error)")
        }
        var r = Reader(root: root, text: text, file: file)
        let role = try r.string("", "role")
        switch role {
        case "site":
            var c = SiteConfig()
            try r.allow(["": ["role"], "node": ["database", "keys", "status"], "hub": ["endpoint", "endpoints", "transport_key", "identity_key"],
                         "releases": ["trust", "chunks", "fetch_rate"], "log": ["level"], "metrics": ["listen"],
                         "portal": ["enabled", "listen", "tls_proxy"]])
            c.database = try r.path("node", "database") ?? c.database
            c.keys = try r.path("node", "keys") ?? c.keys
            c.status = try r.path("node", "status") ?? c.status
            let many = try r.stringArray("hub", "endpoints")
            let one = try r.optionalString("hub", "endpoint")
            if many != nil, one != nil { throw r.fail("hub", "endpoints", "give either endpoint or endpoints, not both") }
            guard let endpoints = many ?? one.map({ [$0] }) else {
                throw r.missing("hub", "endpoint", "e.g. \"tcp://hub.example.vn:7400\", or endpoints = [\"tcp://hub1…\", \"tcp://hub2…\"]")
            }
            guard !endpoints.isEmpty, endpoints.count <= 16 else { throw r.fail("hub", "endpoints", "must list 1 to 16 hubs") }
            for endpoint in endpoints {
                guard endpoint.hasPrefix("tcp://"), endpoint.dropFirst(6).contains(":") else {
                    throw r.fail("hub", many == nil ? "endpoint" : "endpoints", "must look like tcp://HOST:PORT, not \"\(endpoint)\"")
                }
            }
            guard Set(endpoints).count == endpoints.count else { throw r.fail("hub", "endpoints", "lists a hub twice") }
            c.hubEndpoint = endpoints[0]
            c.hubEndpoints = endpoints
            guard let key = try r.optionalString("hub", "transport_key") else { throw r.missing("hub", "transport_key", "the hub's transport public key, 64 hex characters") }
            guard key.count == 64, key.allSatisfy(\.isHexDigit) else { throw r.fail("hub", "transport_key", "must be 64 hex characters (as `hocvu keygen` prints)") }
            c.hubTransportKey = key
            if let id = try r.optionalString("hub", "identity_key") {
                guard id.count == 64, id.allSatisfy(\.isHexDigit) else { throw r.fail("hub", "identity_key", "must be 64 hex characters (the hub's `identity` line from `hocvu keygen`)") }
                c.hubIdentityKey = id
            }
            c.trust = try r.path("releases", "trust")
            c.chunks = try r.path("releases", "chunks") ?? c.chunks
            if let rate = try r.int("releases", "fetch_rate", 0...Int(Int32.max)) { c.fetchRate = rate == 0 ? nil : rate }
            c.logLevel = try r.logLevel() ?? c.logLevel
            c.metrics = try r.metrics(default: c.metrics)
            c.portal = try r.portal()
            return .site(c)
        case "hub":
            var c = HubConfig()
            try r.allow(["": ["role"], "node": ["database", "keys", "status"], "listen": ["endpoint"],
                         "releases": ["trust", "chunks", "max_transfers"], "log": ["level"], "metrics": ["listen"],
                         "dashboard": ["enabled", "listen", "tls_proxy"],
                         "store": ["backend", "host", "port", "database", "user", "password_file", "pool_size", "tls", "timeout", "name"]])
            c.database = try r.path("node", "database") ?? c.database
            c.keys = try r.path("node", "keys") ?? c.keys
            c.status = try r.path("node", "status") ?? c.status
            if let bind = try r.optionalString("listen", "endpoint") {
                guard bind.hasPrefix("tcp://"), bind.dropFirst(6).contains(":") else {
                    throw r.fail("listen", "endpoint", "must look like tcp://ADDRESS:PORT (CURVE only; there is no plaintext listener)")
                }
                c.bind = bind
            }
            c.trust = try r.path("releases", "trust")
            c.chunks = try r.path("releases", "chunks") ?? c.chunks
            c.maxTransfers = try r.int("releases", "max_transfers", 1...10_000) ?? c.maxTransfers
            c.logLevel = try r.logLevel() ?? c.logLevel
            c.metrics = try r.metrics(default: c.metrics)
            c.dashboard = try r.dashboard()
            c.store = try r.store()
            return .hub(c)
        default:
            throw r.fail("", "role", "must be \"site\" or \"hub\"")
        }
    }
}

extension SiteConfig {
    /// The example configuration's placeholder for a key: all zeros (never anyone's real key).
    public static func isPlaceholderKey(_ hex: String) -> Bool { !hex.isEmpty && hex.allSatisfy { $0 == "0" } }
}

extension DaemonConfig {
    /// What `hocvu config check --strict` refuses in a file that is otherwise valid: keys still set
    /// to the example's placeholders (config/site.toml ships all-zero hub keys). Empty for a file
    /// that does not parse (``load(path:)`` reports that).
    public static func placeholderProblems(in text: String, file: String) -> [ConfigError] {
        guard case .site(let c)? = try? parse(text, file: file), let root = try? TOMLTable(string: text) else { return [] }
        let r = Reader(root: root, text: text, file: file)
        var problems = [ConfigError]()
        if SiteConfig.isPlaceholderKey(c.hubTransportKey) {
            problems.append(r.fail("hub", "transport_key", "is the example's placeholder (all zeros): set the hub's transport public key, as the hub's `hocvu keygen` printed it"))
        }
        if let id = c.hubIdentityKey, SiteConfig.isPlaceholderKey(id) {
            problems.append(r.fail("hub", "identity_key", "is the example's placeholder (all zeros): set the hub's identity public key, or remove the line"))
        }
        return problems
    }
}

/// Typed access to the TOML table that knows where each key is written, for error messages.
struct Reader {
    let root: TOMLTable
    let lines: [Substring]
    let file: String

    init(root: TOMLTable, text: String, file: String) {
        self.root = root
        self.lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        self.file = file
    }

    func name(_ section: String, _ key: String) -> String { section.isEmpty ? key : "[\(section)] \(key)" }

    /// The 1-based line where `key` is set in `section` (or the section header; nil if absent).
    func line(_ section: String, _ key: String?) -> Int? {
        var current = ""
        var header: Int?
        for (i, raw) in lines.enumerated() {
            let l = raw.trimmingCharacters(in: .whitespaces)
            if l.hasPrefix("["), let end = l.firstIndex(of: "]") {
                current = String(l[l.index(after: l.startIndex)..<end]).trimmingCharacters(in: .whitespaces)
                if current == section { header = i + 1 }
                continue
            }
            guard current == section, let key else { continue }
            if let eq = l.firstIndex(of: "="), l[..<eq].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'")) == key {
                return i + 1
            }
        }
        return header
    }

    func fail(_ section: String, _ key: String, _ problem: String) -> ConfigError {
        ConfigError(file: file, line: line(section, key), key: name(section, key), problem: problem)
    }

    func missing(_ section: String, _ key: String, _ hint: String) -> ConfigError {
        ConfigError(file: file, line: line(section, nil), key: name(section, key), problem: "is required (\(hint))")
    }

    func table(_ section: String) throws(ConfigError) -> TOMLTable? {
        if section.isEmpty { return root }
        guard let v = root[section] else { return nil }
        guard let t = v.table else {
            throw ConfigError(file: file, line: line("", section), key: section, problem: "must be a table ([\(section)])")
        }
        return t
    }

    func value(_ section: String, _ key: String) throws(ConfigError) -> (any TOMLValueConvertible)? {
        try table(section)?[key]
    }

    func optionalString(_ section: String, _ key: String) throws(ConfigError) -> String? {
        guard let v = try value(section, key) else { return nil }
        guard let s = v.string else { throw fail(section, key, "must be a string in quotes, not \(v.type)") }
        guard !s.isEmpty else { throw fail(section, key, "must not be empty") }
        return s
    }

    func string(_ section: String, _ key: String) throws(ConfigError) -> String {
        guard let s = try optionalString(section, key) else { throw missing(section, key, "\"site\" or \"hub\"") }
        return s
    }

    func path(_ section: String, _ key: String) throws(ConfigError) -> String? {
        guard let s = try optionalString(section, key) else { return nil }
        guard s.hasPrefix("/") else { throw fail(section, key, "must be an absolute path (a service's working directory is not yours)") }
        return s
    }

    func int(_ section: String, _ key: String, _ range: ClosedRange<Int>) throws(ConfigError) -> Int? {
        guard let v = try value(section, key) else { return nil }
        guard let n = v.int else { throw fail(section, key, "must be a whole number, not \(v.type)") }
        guard range.contains(n) else { throw fail(section, key, "must be between \(range.lowerBound) and \(range.upperBound), not \(n)") }
        return n
    }

    func logLevel() throws(ConfigError) -> String? {
        guard let l = try optionalString("log", "level") else { return nil }
        let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
        guard levels.contains(l) else { throw fail("log", "level", "must be one of \(levels.joined(separator: ", "))") }
        return l
    }

    /// `[metrics] listen`: "127.0.0.1:PORT" (loopback only) or "off".
    func metrics(default d: String?) throws(ConfigError) -> String? {
        guard let v = try optionalString("metrics", "listen") else { return d }
        if v == "off" { return nil }
        let parts = v.split(separator: ":")
        guard parts.count == 2, parts[0] == "127.0.0.1", let port = Int(parts[1]), (1...65_535).contains(port) else {
            throw fail("metrics", "listen", "must be \"127.0.0.1:PORT\" (metrics stay on the host) or \"off\"")
        }
        return v
    }

    /// A list of strings, e.g. `endpoints = ["tcp://a:7400", "tcp://b:7400"]`.
    func stringArray(_ section: String, _ key: String) throws(ConfigError) -> [String]? {
        guard let v = try value(section, key) else { return nil }
        guard let a = v.array else { throw fail(section, key, "must be a list of strings, e.g. [\"tcp://a:7400\", \"tcp://b:7400\"]") }
        var out = [String]()
        for i in 0..<a.count {
            guard let s = a[i].string, !s.isEmpty else { throw fail(section, key, "must hold only non-empty strings in quotes") }
            out.append(s)
        }
        return out
    }

    /// `[store]`: the backend and, for PostgreSQL, where it is and how to sign in.
    func store() throws(ConfigError) -> StoreConfig {
        var c = StoreConfig()
        if let b = try optionalString("store", "backend") {
            guard let backend = StoreConfig.Backend(rawValue: b) else { throw fail("store", "backend", "must be \"sqlite\" or \"postgresql\"") }
            c.backend = backend
        }
        c.host = try optionalString("store", "host") ?? c.host
        c.port = try int("store", "port", 1...65_535) ?? c.port
        c.database = try optionalString("store", "database") ?? c.database
        c.user = try optionalString("store", "user") ?? c.user
        c.passwordFile = try path("store", "password_file")
        c.poolSize = try int("store", "pool_size", 1...64) ?? c.poolSize
        if let t = try optionalString("store", "tls") {
            guard ["disable", "prefer", "require", "verify-full"].contains(t) else {
                throw fail("store", "tls", "must be \"disable\", \"prefer\", \"require\" or \"verify-full\" (as libpq's sslmode)")
            }
            c.tls = t
        }
        // A call blocks the hub's loop up to this long: it must stay well under systemd's 30 s watchdog.
        c.timeoutSeconds = try int("store", "timeout", 1...20) ?? c.timeoutSeconds
        if let n = try optionalString("store", "name") {
            guard n.count <= 64, n.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
                throw fail("store", "name", "must be 1 to 64 letters, digits, '-', '_' or '.'")
            }
            c.name = n
        }
        return c
    }

    /// `[dashboard]`: off by default, loopback only (HTTPS comes from a reverse proxy on the host).
    func dashboard() throws(ConfigError) -> DashboardConfig {
        var d = DashboardConfig()
        for (key, set) in [("enabled", { (v: Bool) in d.enabled = v }), ("tls_proxy", { (v: Bool) in d.behindTLSProxy = v })] {
            guard let v = try value("dashboard", key) else { continue }
            guard let b = v.bool else { throw fail("dashboard", key, "must be true or false, not \(v.type)") }
            set(b)
        }
        if let listen = try optionalString("dashboard", "listen") {
            guard let (host, _) = DashboardConfig.hostAndPort(listen) else {
                throw fail("dashboard", "listen", "must be \"127.0.0.1:PORT\", e.g. \"127.0.0.1:9480\"")
            }
            guard DashboardConfig.isLoopback(host) else {
                throw fail(
                    "dashboard", "listen",
                    "\(listen) is not loopback: the dashboard listens on 127.0.0.1 only; serve it to the network through an HTTPS reverse proxy and set tls_proxy = true (docs/operations.md, \"Dashboard\")")
            }
            d.listen = listen
        }
        return d
    }

    /// `[portal]`: off by default; any IPv4 address (the commune LAN's), checked for shape.
    func portal() throws(ConfigError) -> PortalConfig {
        var p = PortalConfig()
        for (key, set) in [("enabled", { (v: Bool) in p.enabled = v }), ("tls_proxy", { (v: Bool) in p.behindTLSProxy = v })] {
            guard let v = try value("portal", key) else { continue }
            guard let b = v.bool else { throw fail("portal", key, "must be true or false, not \(v.type)") }
            set(b)
        }
        if let listen = try optionalString("portal", "listen") {
            guard DashboardConfig.hostAndPort(listen) != nil else {
                throw fail("portal", "listen", "must be \"IPV4:PORT\", e.g. \"0.0.0.0:8480\" (every interface) or \"192.168.1.10:8480\"")
            }
            p.listen = listen
        }
        return p
    }

    /// Unknown sections and keys are errors: a typo must not silently fall back to a default.
    func allow(_ known: [String: Set<String>]) throws(ConfigError) {
        for key in root.keys {
            if let sub = root[key]?.table {
                guard let allowed = known[key] else {
                    throw ConfigError(file: file, line: line(key, nil), key: "[\(key)]", problem: "unknown section (known: \(known.keys.filter { !$0.isEmpty }.sorted().joined(separator: ", ")))")
                }
                for k in sub.keys where !allowed.contains(k) {
                    throw fail(key, k, "unknown key (known in [\(key)]: \(allowed.sorted().joined(separator: ", ")))")
                }
            } else if !(known[""] ?? []).contains(key) {
                throw fail("", key, "unknown key")
            }
        }
    }
}
