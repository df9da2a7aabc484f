import Config
import Foundation
import Testing

@Suite struct ConfigTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func shippedExamplesAreValid() throws {
        guard case .site(let site) = try DaemonConfig.load(path: Self.root.appendingPathComponent("config/site.toml").path) else {
            Issue.record("site.toml is not a site configuration"); return
        }
        #expect(site.hubEndpoint == "tcp://hub.hocvu.example.vn:7400" && site.trust == "/etc/hocvu/trust.json" && site.fetchRate == nil)
        guard case .hub(let hub) = try DaemonConfig.load(path: Self.root.appendingPathComponent("config/hub.toml").path) else {
            Issue.record("hub.toml is not a hub configuration"); return
        }
        #expect(hub.bind == "tcp://0.0.0.0:7400" && hub.maxTransfers == 64)
    }

    @Test func theExamplesPlaceholderKeysAreNamedWithTheirLines() throws {
        let path = Self.root.appendingPathComponent("config/site.toml").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let problems = DaemonConfig.placeholderProblems(in: text, file: "site.toml")
        #expect(problems.map(\.key) == ["[hub] transport_key", "[hub] identity_key"])
        #expect(problems.allSatisfy { $0.problem.hasPrefix("is the example's placeholder (all zeros)") && $0.line != nil })
        let real = text.replacingOccurrences(of: String(repeating: "0", count: 64), with: key)
        #expect(DaemonConfig.placeholderProblems(in: real, file: "site.toml").isEmpty)
        let hubText = try String(contentsOfFile: Self.root.appendingPathComponent("config/hub.toml").path, encoding: .utf8)
        #expect(DaemonConfig.placeholderProblems(in: hubText, file: "hub.toml").isEmpty)
        #expect(SiteConfig.isPlaceholderKey(String(repeating: "0", count: 64)) && !SiteConfig.isPlaceholderKey(key) && !SiteConfig.isPlaceholderKey(""))
    }

    func error(_ text: String) -> ConfigError? {
        do { _ = try DaemonConfig.parse(text, file: "x.toml"); return nil } catch { return error }
    }

    let key = String(repeating: "ab", count: 32)

    @Test func errorsNameTheKeyAndLine() {
        let base = "role = \"site\"\n[hub]\nendpoint = \"tcp://h:7400\"\n"
        #expect(error(base + "transport_key = \"12\"\n") == ConfigError(
            file: "x.toml", line: 4, key: "[hub] transport_key", problem: "must be 64 hex characters (as `hocvu keygen` prints)"))
        #expect(error(base + "transport_key = \"\(key)\"\ntypo = 1\n")?.description.hasPrefix("x.toml:5: [hub] typo: unknown key") == true)
        #expect(error(base + "transport_key = \"\(key)\"\n[releases]\nfetch_rate = \"fast\"\n")?.description
            == "x.toml:6: [releases] fetch_rate: must be a whole number, not string")
        #expect(error(base + "transport_key = \"\(key)\"\n[node]\ndatabase = \"relative.sqlite\"\n")?.line == 6)
        #expect(error("role = \"site\"\n[hub]\ntransport_key = \"\(key)\"\n")?.description.contains("[hub] endpoint: is required") == true)
        #expect(error("role = \"relay\"\n")?.description == "x.toml:1: role: must be \"site\" or \"hub\"")
        #expect(error("role = \"hub\"\n[listen]\nendpoint = \"0.0.0.0:7400\"\n")?.line == 3)
        #expect(error("role = \"hub\"\n[releases]\nmax_transfers = 0\n")?.problem == "must be between 1 and 10000, not 0")
        #expect(error("role = \"hub\"\n[prometheus]\n")?.key == "[prometheus]")
        #expect(error("role = \"hub\"\n[metrics]\nlisten = \"0.0.0.0:9465\"\n")?.line == 3)
        #expect(error("role = \"hub\"\n[log\n")?.line == 2)
        #expect(error("role = \"hub\"\n[log]\nlevel = \"loud\"\n")?.line == 3)
    }

    @Test("[store]: SQLite by default; PostgreSQL with its keys checked; errors name key and line")
    func storeSection() throws {
        guard case .hub(let plain) = try DaemonConfig.parse("role = \"hub\"\n", file: "x.toml") else { Issue.record("not a hub"); return }
        #expect(plain.store == StoreConfig() && plain.store.backend == .sqlite)
        let pg = """
            role = "hub"
            [store]
            backend = "postgresql"
            host = "db.hocvu.internal"
            port = 5433
            database = "hocvu"
            user = "hocvu"
            password_file = "/etc/hocvu/db-password"
            pool_size = 4
            tls = "verify-full"
            timeout = 5
            name = "hub-a"
            """
        guard case .hub(let h) = try DaemonConfig.parse(pg, file: "x.toml") else { Issue.record("not a hub"); return }
        #expect(h.store.backend == .postgresql && h.store.host == "db.hocvu.internal" && h.store.port == 5433)
        #expect(h.store.passwordFile == "/etc/hocvu/db-password" && h.store.poolSize == 4 && h.store.tls == "verify-full")
        #expect(h.store.timeoutSeconds == 5 && h.store.name == "hub-a")
        let head = "role = \"hub\"\n[store]\n"
        #expect(error(head + "backend = \"mysql\"\n")?.line == 3)
        #expect(error(head + "tls = \"yes\"\n")?.problem.contains("verify-full") == true)
        // A database call waits in the hub's loop: a timeout near systemd's 30 s watchdog is refused.
        #expect(error(head + "timeout = 30\n")?.problem == "must be between 1 and 20, not 30")
        #expect(error(head + "password_file = \"db-password\"\n")?.key == "[store] password_file")
        #expect(error(head + "name = \"hub a\"\n")?.key == "[store] name")
        #expect(error(head + "pasword_file = \"/x\"\n")?.description.contains("unknown key") == true)
    }

    @Test("[hub] endpoints: several hubs in order; one of endpoint or endpoints; each checked")
    func hubEndpoints() throws {
        let base = "role = \"site\"\n[hub]\ntransport_key = \"\(key)\"\n"
        guard case .site(let s) = try DaemonConfig.parse(base + "endpoints = [\"tcp://a:7400\", \"tcp://b:7400\"]\n", file: "x.toml")
        else { Issue.record("not a site"); return }
        #expect(s.hubEndpoints == ["tcp://a:7400", "tcp://b:7400"] && s.hubEndpoint == "tcp://a:7400")
        guard case .site(let one) = try DaemonConfig.parse(base + "endpoint = \"tcp://a:7400\"\n", file: "x.toml") else { return }
        #expect(one.hubEndpoints == ["tcp://a:7400"])
        #expect(error(base + "endpoints = [\"tcp://a:7400\"]\nendpoint = \"tcp://a:7400\"\n")?.problem.contains("not both") == true)
        #expect(error(base + "endpoints = [\"tcp://a:7400\", \"b:7400\"]\n")?.problem.contains("\"b:7400\"") == true)
        #expect(error(base + "endpoints = [\"tcp://a:7400\", \"tcp://a:7400\"]\n")?.problem == "lists a hub twice")
        #expect(error(base + "endpoints = []\n")?.problem == "must list 1 to 16 hubs")
        #expect(error(base + "endpoints = \"tcp://a:7400\"\n")?.problem.contains("list of strings") == true)
        #expect(error(base + "endpoints = [7400]\n")?.problem.contains("strings") == true)
    }

    @Test("[dashboard]: off by default, loopback only, tls_proxy marks cookies Secure; errors name key and line")
    func dashboardSection() throws {
        let hub = "role = \"hub\"\n"
        guard case .hub(let plain) = try DaemonConfig.parse(hub, file: "x.toml") else { Issue.record("not a hub"); return }
        #expect(plain.dashboard == DashboardConfig() && !plain.dashboard.enabled && plain.dashboard.listen == "127.0.0.1:9480")
        #expect(!plain.dashboard.behindTLSProxy)
        guard case .hub(let on) = try DaemonConfig.parse(hub + "[dashboard]\nenabled = true\nlisten = \"127.0.0.1:8088\"\ntls_proxy = true\n", file: "x.toml") else { return }
        #expect(on.dashboard.enabled && on.dashboard.listen == "127.0.0.1:8088" && on.dashboard.behindTLSProxy)
        #expect(error(hub + "[dashboard]\nenabled = \"yes\"\n") == ConfigError(file: "x.toml", line: 3, key: "[dashboard] enabled", problem: "must be true or false, not string"))
        #expect(error(hub + "[dashboard]\ntls_proxy = 1\n")?.key == "[dashboard] tls_proxy")
        #expect(error(hub + "[dashboard]\nlisten = \"localhost:80\"\n")?.key == "[dashboard] listen")
        #expect(error(hub + "[dashboard]\nlisten = \"127.0.0.1:0\"\n")?.key == "[dashboard] listen")
        #expect(error(hub + "[dashboard]\nlisten = \"0.0.0.0:8080\"\n").map { $0.line == 3 && $0.problem.contains("is not loopback") } == true)
        #expect(error(hub + "[dashboard]\ntls_certificate = \"/c.pem\"\n")?.key == "[dashboard] tls_certificate")
    }

    @Test("[portal]: off by default, any IPv4:PORT (the commune LAN), tls_proxy; errors name key and line")
    func portalSection() throws {
        let site = "role = \"site\"\n[hub]\nendpoint = \"tcp://hub:7400\"\ntransport_key = \"\(String(repeating: "ab", count: 32))\"\n"
        guard case .site(let plain) = try DaemonConfig.parse(site, file: "x.toml") else { Issue.record("not a site"); return }
        #expect(plain.portal == PortalConfig() && !plain.portal.enabled)
        guard case .site(let on) = try DaemonConfig.parse(site + "[portal]\nenabled = true\nlisten = \"0.0.0.0:8480\"\ntls_proxy = true\n", file: "x.toml") else { return }
        #expect(on.portal.enabled && on.portal.listen == "0.0.0.0:8480" && on.portal.behindTLSProxy)
        #expect(error(site + "[portal]\nlisten = \"lan:80\"\n").map { $0.key == "[portal] listen" && $0.line == 6 } == true)
        #expect(error(site + "[portal]\nenabled = 1\n")?.key == "[portal] enabled")
        #expect(error(site + "[portal]\nport = 8480\n")?.key == "[portal] port")
        #expect(error("role = \"hub\"\n[portal]\nenabled = true\n")?.key == "[portal]", "a hub has no portal")
    }
}
