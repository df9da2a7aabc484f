import Foundation
import GRDB
import Testing

@testable import hocvu

/// The real `hocvu` binary as an operator meets it: which commands create a database and which
/// refuse a missing one, read-only commands beside a writer, exit statuses and messages, secret key
/// modes, damaged databases, and log lines for journald.
@Suite(.serialized) struct OperatorCommandTests {
    struct Run {
        let status: Int32
        let out: String
        let err: String
    }

    static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("hocvu").path
    /// Runs a command as another user (nobody) when the tests run as root; nil when that is impossible.
    static let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].first { FileManager.default.isExecutableFile(atPath: $0) }

    let dir: String

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("hocvu-cli-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chmod(dir, 0o755)
    }

    func cleanup() {
        chmod(dir, 0o755)
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Runs hocvu (as `nobody` with `asNobody`), its output in files so a long report cannot block it.
    @discardableResult
    func hocvu(_ args: [String], env: [String: String] = [:], asNobody: Bool = false) throws -> Run {
        let p = Process()
        if asNobody {
            p.executableURL = URL(fileURLWithPath: try #require(Self.setpriv))
            p.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", Self.binary] + args
        } else {
            p.executableURL = URL(fileURLWithPath: Self.binary)
            p.arguments = args
        }
        var environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        if env["JOURNAL_STREAM"] == nil { environment["JOURNAL_STREAM"] = nil }
        p.environment = environment
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        let id = UUID().uuidString.prefix(8)
        let outPath = "\(dir)/.out-\(id)", errPath = "\(dir)/.err-\(id)"
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outPath); try? FileManager.default.removeItem(atPath: errPath) }
        p.standardOutput = FileHandle(forWritingAtPath: outPath)
        p.standardError = FileHandle(forWritingAtPath: errPath)
        try p.run()
        p.waitUntilExit()
        return Run(
            status: p.terminationStatus,
            // Decoded as is: Foundation's String(contentsOfFile:) would drop a byte-order mark the CSV must carry.
            out: FileManager.default.contents(atPath: outPath).map { String(decoding: $0, as: UTF8.self) } ?? "",
            err: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }

    func file(_ name: String) -> String { "\(dir)/\(name)" }
    var hex32: String { String(repeating: "ab", count: 32) }

    /// Keys and a hub database holding one enrolled site (commune 70), created by `hub enroll`.
    func hubWithOneSite() throws {
        try #require(try hocvu(["keygen", "--dir", file("keys")]).status == 0)
        let enroll = try hocvu(["hub", "enroll", "--db", file("hub.sqlite"), "--keys", file("keys"), "--commune", "70",
                                "--identity", hex32, "--transport", String(repeating: "cd", count: 32)])
        try #require(enroll.status == 0, "\(enroll.err)")
        #expect(enroll.err.contains("created the hub's database"), "creating a database is never silent")
    }

    // MARK: - Dashboard accounts

    @Test func dashboardAccountsAreManagedFromTheCommandLineWithThePasswordNeverInArgv() throws {
        defer { cleanup() }
        try hubWithOneSite()
        let db = ["--db", file("hub.sqlite"), "--keys", file("keys")]
        FileManager.default.createFile(atPath: file("pw"), contents: Data("một mật khẩu đủ dài\n".utf8))
        FileManager.default.createFile(atPath: file("short"), contents: Data("ngắn\n".utf8))
        let add = try hocvu(["hub", "user", "add", "nguyenvana", "--scope", "national", "--password-file", file("pw")] + db)
        #expect(add.status == 0, "\(add.err)")
        #expect(try hocvu(["hub", "user", "add", "phutho", "--scope", "province:25", "--password-file", file("pw")] + db).status == 0)
        // Usage errors before anything is opened: no --password option exists, bad scopes and names.
        #expect(try hocvu(["hub", "user", "add", "x", "--scope", "national", "--password", "secret"] + db).status == 64)
        #expect(try hocvu(["hub", "user", "add", "x", "--scope", "province"] + db).status == 64)
        #expect(try hocvu(["hub", "user", "add", "Bad Name", "--scope", "national"] + db).status == 64)
        let short = try hocvu(["hub", "user", "add", "x", "--scope", "national", "--password-file", file("short")] + db)
        #expect(short.status == 1 && short.err.contains("at least 12"))
        let unknown = try hocvu(["hub", "user", "add", "x", "--scope", "province:999", "--password-file", file("pw")] + db)
        #expect(unknown.status == 1 && unknown.err.contains("province code 999"))
        let again = try hocvu(["hub", "user", "add", "nguyenvana", "--scope", "national", "--password-file", file("pw")] + db)
        #expect(again.status == 1 && again.err.contains("already exists"))

        let list = try hocvu(["hub", "user", "list", "--db", file("hub.sqlite")])  // read-only, no keys
        #expect(list.status == 0)
        #expect(list.out.contains("nguyenvana\tnational\t") && list.out.contains("phutho\tprovince:25\t"))
        #expect(!list.out.contains("argon2"), "hashes are never printed")
        #expect(try hocvu(["hub", "user", "remove", "phutho"] + db).status == 0)
        let gone = try hocvu(["hub", "user", "remove", "phutho"] + db)
        #expect(gone.status == 1 && gone.err.contains("there is no dashboard user phutho"))
        let audit = try hocvu(["hub", "user", "audit", "--limit", "5", "--db", file("hub.sqlite")])
        #expect(audit.status == 0 && audit.out.isEmpty, "no sign-in yet")
        #expect(try hocvu(["hub", "user", "audit", "--limit", "0", "--db", file("hub.sqlite")]).status == 64)
    }

    // MARK: - Item 5: a mistyped --db

    @Test func commandsThatDoNotCreateRefuseAMissingDatabase() throws {
        defer { cleanup() }
        try hubWithOneSite()
        try Data("{\"type\":\"learner\",\"national_id\":\"001234567890\",\"full_name\":\"A\",\"role\":\"civil_servant\",\"unit\":\"UBND\",\"home_commune\":70}\n".utf8)
            .write(to: URL(fileURLWithPath: file("events.jsonl")))
        let typo = file("hub.sqlte")
        let commands: [[String]] = [
            ["hub", "report"], ["hub", "sites"], ["hub", "revoke", "--commune", "70"], ["site", "import", file("events.jsonl")],
            ["site", "courses", "--role", "civil_servant"], ["site", "restored"],
        ]
        for command in commands {
            let r = try hocvu(command + ["--db", typo, "--keys", file("keys")])
            #expect(r.status == 1, "\(command): \(r.err)")
            #expect(r.err.contains("there is no database at \(typo)"), "\(command): \(r.err)")
            #expect(r.err.contains("does not create one") && r.err.contains("first start"), "\(command) names what creates it")
            #expect(!r.err.contains("Usage:"), "a runtime failure is not a usage error")
            #expect(!r.out.contains("National:"), "no all-zero report")
            #expect(!FileManager.default.fileExists(atPath: typo), "\(command) created \(typo)")
        }
        let db = try hocvu(["db", "check", "--db", typo])
        #expect(db.status == 1 && db.err.contains("there is no database"))
    }

    // MARK: - Item 4: read-only commands

    @Test func reportAndSitesReadWhileAnotherProcessHoldsTheWriteLock() throws {
        defer { cleanup() }
        try hubWithOneSite()
        var unsafe = Configuration()
        unsafe.allowsUnsafeTransactions = true  // the transaction stays open across accesses, on purpose
        let writer = try DatabaseQueue(path: file("hub.sqlite"), configuration: unsafe)
        try writer.writeWithoutTransaction { db in
            try db.execute(sql: "BEGIN IMMEDIATE")
            try db.execute(sql: "UPDATE enrolled_site SET commune_code = commune_code")
        }
        defer { try? writer.writeWithoutTransaction { db in try db.execute(sql: "ROLLBACK") } }
        let started = Date()
        let sites = try hocvu(["hub", "sites", "--db", file("hub.sqlite"), "--keys", file("keys")])
        #expect(sites.status == 0, "\(sites.err)")
        #expect(sites.out.hasPrefix("70\tactive"))
        let report = try hocvu(["hub", "report", "--db", file("hub.sqlite"), "--format", "csv"])
        #expect(report.status == 0, "\(report.err)")
        // UTF-8 with a byte-order mark (Excel), every commune, CRLF line ends.
        #expect(report.out.hasPrefix("\u{FEFF}level,code,name"))
        #expect(report.out.components(separatedBy: "\r\n").filter { $0.hasPrefix("commune,") }.count == 3_321)
        #expect(Date().timeIntervalSince(started) < 4, "neither waited for the writer's lock (busy timeout 5 s)")
    }

    @Test func reportAndSitesReadAFileThisUserMayNotWrite() throws {
        defer { cleanup() }
        try hubWithOneSite()
        let asNobody = geteuid() == 0
        if asNobody {
            try #require(Self.setpriv != nil, "needs setpriv to drop root")
            for name in ["keys", "keys/identity.key", "keys/transport.key"] { chown(file(name), 65_534, 65_534) }
        }
        chmod(file("hub.sqlite"), 0o444)
        chmod(dir, 0o555)  // nor create a -shm or -wal beside it
        let before = FileManager.default.contents(atPath: file("hub.sqlite"))
        let sites = try hocvu(["hub", "sites", "--db", file("hub.sqlite"), "--keys", file("keys")], asNobody: asNobody)
        #expect(sites.status == 0, "\(sites.err)")
        #expect(sites.out.hasPrefix("70\tactive"))
        // No keys needed: the report reads counts and signs nothing.
        let report = try hocvu(["hub", "report", "--db", file("hub.sqlite")], asNobody: asNobody)
        #expect(report.status == 0, "\(report.err)")
        #expect(report.out.contains("National: 0 of 0 officials on the rosters certified"), "\(report.out)")
        #expect(FileManager.default.contents(atPath: file("hub.sqlite")) == before)
        // A command that writes says why it cannot, naming the file and the user.
        let revoke = try hocvu(["hub", "revoke", "--commune", "70", "--db", file("hub.sqlite"), "--keys", file("keys")], asNobody: asNobody)
        #expect(revoke.status == 1)
        #expect(revoke.err.contains("permission denied") && revoke.err.contains(file("hub.sqlite")), "\(revoke.err)")
    }

    // MARK: - Item 9: exit statuses and messages

    @Test func usageErrorsExit64AndRuntimeFailuresExit1Alone() throws {
        defer { cleanup() }
        let usage = try hocvu(["hub", "report", "--format", "xml"])
        #expect(usage.status == 64 && usage.err.contains("Usage:"))
        let verify = try hocvu(["admin", "release", "verify", file("no-release"), "--trust", file("no-trust.json")])
        #expect(verify.status == 1)
        #expect(verify.err.hasPrefix("Error: ") && !verify.err.contains("Usage:"), "\(verify.err)")
        #expect(verify.err.contains(file("no-release")))
    }

    // MARK: - Issue 11, step 5: runtime failures exit 1 alone; usage errors keep 64 and the usage text

    /// What `r` shows when it failed at run time: status 1, `Error: …` naming `path`, no usage text.
    func expectRuntimeFailure(_ r: Run, naming path: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 1, "\(what): status \(r.status), \(r.err)", sourceLocation: sourceLocation)
        #expect(r.err.contains(path), "\(what) names \(path): \(r.err)", sourceLocation: sourceLocation)
        #expect(!r.err.lowercased().contains("usage:"), "\(what) is not a usage error: \(r.err)", sourceLocation: sourceLocation)
    }

    @Test func aMissingKeyFileExits1NamingItWithoutUsage() throws {
        defer { cleanup() }
        try hubWithOneSite()
        let keys = file("no-such-keys")
        let sites = try hocvu(["hub", "sites", "--db", file("hub.sqlite"), "--keys", keys])
        expectRuntimeFailure(sites, naming: "\(keys)/identity.key", "hub sites")
        #expect(sites.err.hasPrefix("Error: ") && sites.err.contains("hocvu keygen --dir \(keys)"), "says how to make keys: \(sites.err)")

        try Data("\n".utf8).write(to: URL(fileURLWithPath: file("events.jsonl")))
        let siteDB = file("site.sqlite")
        let runtime: [(String, [String])] = [
            ("hub enroll", ["hub", "enroll", "--db", file("new-hub.sqlite"), "--keys", keys, "--commune", "71", "--identity", hex32,
                            "--transport", String(repeating: "ef", count: 32)]),
            ("site import", ["site", "import", "--db", siteDB, "--keys", keys, file("events.jsonl")]),
            // A daemon logs it (crit) and exits 1; systemd would restart it, so it must not look like a typo.
            ("site run", ["site", "run", "--db", siteDB, "--keys", keys, "--hub", "tcp://127.0.0.1:7400", "--hub-key", hex32]),
            ("hub run", ["hub", "run", "--db", file("run-hub.sqlite"), "--keys", keys, "--bind", "tcp://127.0.0.1:*"]),
            ("admin release sign", ["admin", "release", "sign", file("no-release"), "--keys", keys]),
        ]
        for (what, args) in runtime {
            expectRuntimeFailure(try hocvu(args), naming: "\(keys)/identity.key", what)
        }
        #expect(!FileManager.default.fileExists(atPath: file("new-hub.sqlite")), "no database is created without keys")
        #expect(!FileManager.default.fileExists(atPath: siteDB), "no database is created without keys")
        #expect(!FileManager.default.fileExists(atPath: file("run-hub.sqlite")), "no database is created without keys")

        let missingFile = try hocvu(["site", "import", "--db", siteDB, "--keys", file("keys"), file("no-events.jsonl")])
        expectRuntimeFailure(missingFile, naming: file("no-events.jsonl"), "site import of a missing file")
    }

    @Test func aUsageErrorStillExits64WithTheUsageText() throws {
        defer { cleanup() }
        try #require(try hocvu(["keygen", "--dir", file("keys")]).status == 0)
        let usage: [(String, [String])] = [
            ("a malformed key option", ["hub", "enroll", "--db", file("hub.sqlite"), "--keys", file("keys"), "--commune", "70",
                                        "--identity", "not-hex", "--transport", hex32]),
            ("a missing required option", ["site", "run", "--db", file("site.sqlite"), "--keys", file("keys"), "--hub-key", hex32]),
            ("a bad enumerated value", ["site", "courses", "--db", file("site.sqlite"), "--keys", file("keys"), "--role", "astronaut"]),
            ("a threshold above the admins given", ["admin", "trust", "--threshold", "3", "--out", file("trust.json"), file("a.json")]),
            ("an unknown option", ["hub", "sites", "--no-such-option"]),
            ("an unknown option to a daemon", ["hub", "run", "--db", file("hub.sqlite"), "--keys", file("keys"), "--no-such-option"]),
        ]
        for (what, args) in usage {
            let r = try hocvu(args)
            #expect(r.status == 64, "\(what): status \(r.status), \(r.err)")
            #expect(r.err.contains("Usage:"), "\(what) shows the usage: \(r.err)")
        }
        #expect(!FileManager.default.fileExists(atPath: file("hub.sqlite")), "a usage error is found before any database is created")
        #expect(!FileManager.default.fileExists(atPath: file("site.sqlite")))
    }

    func writeStatus(_ object: [String: Any]) throws {
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: file("status.json")))
    }

    @Test func statusExitsNonZeroForADeadOrUnresponsiveDaemon() throws {
        defer { cleanup() }
        let none = try hocvu(["status", "--file", file("status.json")])
        #expect(none.status == 3 && none.out.hasPrefix("not running"))
        let noneJSON = try hocvu(["status", "--json", "--file", file("status.json")])
        #expect(noneJSON.status == 3 && noneJSON.out.contains("\"daemon_running\" : false"))

        let now = Int64(Date().timeIntervalSince1970 * 1_000)
        try writeStatus(["role": "site", "connected": true, "pid": Int(getpid()), "updated_at": now])
        let fresh = try hocvu(["status", "--file", file("status.json")])
        #expect(fresh.status == 0, "\(fresh.out)\(fresh.err)")
        #expect(fresh.out.contains("connected: 1") || fresh.out.contains("connected: true"))

        try writeStatus(["role": "site", "pid": Int(getpid()), "updated_at": now - 60_000])
        let stale = try hocvu(["status", "--file", file("status.json")])
        #expect(stale.status == 3 && stale.out.hasPrefix("not responding"))
        let staleJSON = try hocvu(["status", "--json", "--file", file("status.json")])
        #expect(staleJSON.status == 3 && staleJSON.out.contains("\"daemon_responsive\" : false"))

        let gone = Process()
        gone.executableURL = URL(fileURLWithPath: "/bin/true")
        try gone.run()
        gone.waitUntilExit()
        try writeStatus(["role": "hub", "pid": Int(gone.processIdentifier), "updated_at": now])
        let dead = try hocvu(["status", "--file", file("status.json")])
        #expect(dead.status == 3 && dead.out.contains("is gone"), "\(dead.out)")

        try Data("{half a file".utf8).write(to: URL(fileURLWithPath: file("status.json")))
        let garbled = try hocvu(["status", "--file", file("status.json")])
        #expect(garbled.status == 4)

        let config = try hocvu(["status", "--config", file("missing.toml")])
        #expect(config.status == 4 && config.err.contains("missing.toml"))
    }

    @Test func statusReportsPermissionDeniedAsSuch() throws {
        defer { cleanup() }
        let asNobody = geteuid() == 0
        if asNobody { try #require(Self.setpriv != nil) }
        try writeStatus(["role": "site", "pid": Int(getpid()), "updated_at": Int64(Date().timeIntervalSince1970 * 1_000)])
        chmod(file("status.json"), 0o000)
        let denied = try hocvu(["status", "--file", file("status.json")], asNobody: asNobody)
        #expect(denied.status == 4)
        #expect(denied.err.contains("permission denied") && denied.err.contains(file("status.json")), "\(denied.err)")
        #expect(!denied.out.contains("not running") && !denied.err.contains("not running"))
    }

    @Test func keyFilesReportPermissionDeniedNotMissing() throws {
        defer { cleanup() }
        let asNobody = geteuid() == 0
        if asNobody { try #require(Self.setpriv != nil) }
        try #require(try hocvu(["keygen", "--dir", file("keys")]).status == 0)  // 0700, owned by this user
        let r = try hocvu(["hub", "sites", "--db", file("hub.sqlite"), "--keys", file("keys")], asNobody: asNobody)
        #expect(r.status == 1)
        #expect(r.err.contains("permission denied") && r.err.contains("run the command as"), "\(r.err)")
        #expect(!r.err.contains("create keys"))
    }

    func siteConfig(_ name: String, transportKey: String, identityKey: String? = nil) throws -> String {
        var text = """
            role = "site"
            [node]
            database = "\(file("site.sqlite"))"
            keys = "\(file("keys"))"
            [hub]
            endpoint = "tcp://127.0.0.1:7400"
            transport_key = "\(transportKey)"

            """
        if let identityKey { text += "identity_key = \"\(identityKey)\"\n" }
        try Data(text.utf8).write(to: URL(fileURLWithPath: file(name)))
        return file(name)
    }

    @Test func strictConfigCheckRefusesPlaceholdersAndOpenKeysBeforeSayingValid() throws {
        defer { cleanup() }
        try #require(try hocvu(["keygen", "--dir", file("keys")]).status == 0)
        let zeros = String(repeating: "0", count: 64)
        let placeholder = try siteConfig("site.toml", transportKey: zeros, identityKey: zeros)
        #expect(try hocvu(["config", "check", placeholder]).status == 0, "syntax alone is fine")
        let strict = try hocvu(["config", "check", "--strict", placeholder])
        #expect(strict.status == 2)
        #expect(!strict.out.contains("valid"), "no \"valid\" before (or beside) errors")
        #expect(strict.err.contains("site.toml:7: [hub] transport_key: is the example's placeholder"), "\(strict.err)")
        #expect(strict.err.contains("[hub] identity_key"))

        let good = try siteConfig("good.toml", transportKey: hex32)
        chmod(file("keys/identity.key"), 0o644)
        let open = try hocvu(["config", "check", "--strict", good])
        #expect(open.status == 2 && !open.out.contains("valid"))
        #expect(open.err.contains("mode 0644") && open.err.contains("chmod 600 \(file("keys/identity.key"))"), "\(open.err)")

        chmod(file("keys/identity.key"), 0o600)
        let fine = try hocvu(["config", "check", "--strict", good])
        #expect(fine.status == 0 && fine.out.contains("valid site configuration"), "\(fine.err)")
        #expect(fine.err.isEmpty)

        let site = try hocvu(["site", "run", "--config", placeholder])
        #expect(site.status == 1 && site.err.contains("placeholder"), "\(site.err)")
    }

    // MARK: - Item 10: secret key modes and damaged databases

    @Test func keysReadableByOthersAreRefusedByEveryCommandThatUsesThem() throws {
        defer { cleanup() }
        try hubWithOneSite()
        try Data("\n".utf8).write(to: URL(fileURLWithPath: file("events.jsonl")))
        chmod(file("keys/transport.key"), 0o644)
        let commands: [[String]] = [
            ["hub", "run", "--db", file("hub.sqlite"), "--keys", file("keys"), "--bind", "tcp://127.0.0.1:*"],
            ["site", "run", "--db", file("hub.sqlite"), "--keys", file("keys"), "--hub", "tcp://127.0.0.1:7400", "--hub-key", hex32],
            ["site", "import", "--db", file("hub.sqlite"), "--keys", file("keys"), file("events.jsonl")],
        ]
        for command in commands {
            let r = try hocvu(command)
            #expect(r.status == 1, "\(command)")
            #expect(r.err.contains("\(file("keys/transport.key")) is readable by group or others (mode 0644)"), "\(command): \(r.err)")
            #expect(r.err.contains("chmod 600 \(file("keys/transport.key"))"))
        }
    }

    @Test func aDamagedDatabaseIsRefusedWithTheRestoreSteps() throws {
        defer { cleanup() }
        try hubWithOneSite()
        let path = file("hub.sqlite")
        var data = try #require(FileManager.default.contents(atPath: path))
        let start = data.count / 2
        for i in start..<(start + 8_192) { data[i] = UInt8.random(in: 0...255) }
        try data.write(to: URL(fileURLWithPath: path))

        let run = try hocvu(["hub", "run", "--db", path, "--keys", file("keys"), "--bind", "tcp://127.0.0.1:*"], env: ["JOURNAL_STREAM": "8:1"])
        #expect(run.status == 1)
        #expect(run.err.hasPrefix("<2>Cannot start: the database \(path) is damaged"), "\(run.err)")
        #expect(run.err.contains("Backup and restore") && run.err.contains("systemctl stop hocvu-hub"))
        let check = try hocvu(["db", "check", "--db", path, "--role", "hub"])
        #expect(check.status == 2)
        #expect(check.err.contains("\(path): ") && check.err.contains("hocvu does not run on a damaged database"))
    }

    // MARK: - Item 11: journald lines

    @Test func aDaemonUnderSystemdLogsPriorityPrefixedLinesWithoutTimestamps() throws {
        defer { cleanup() }
        try hubWithOneSite()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = ["hub", "run", "--db", file("hub.sqlite"), "--keys", file("keys"), "--bind", "tcp://127.0.0.1:*"]
        p.environment = ProcessInfo.processInfo.environment.merging(["JOURNAL_STREAM": "8:12345"]) { $1 }
        let errPath = file("hub.log")
        FileManager.default.createFile(atPath: errPath, contents: nil)
        p.standardError = FileHandle(forWritingAtPath: errPath)
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        var log = ""
        for _ in 0..<100 {
            log = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
            if log.contains("Hub ready") { break }
            usleep(100_000)
        }
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        log = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        let lines = log.split(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("<6>Hub ready endpoint=tcp://127.0.0.1:") }, "\(log)")
        #expect(lines.contains { $0.hasPrefix("<6>Database checked and open") })
        #expect(lines.allSatisfy { $0.first == "<" && !$0.contains("2026-") && !$0.contains("2025-") }, "\(log)")
    }

    @Test func aDatabaseRootCreatesIsHandedToTheDirectoryOwner() throws {
        defer { cleanup() }
        try #require(try hocvu(["keygen", "--dir", file("keys")]).status == 0)
        guard geteuid() == 0 else { return }
        try FileManager.default.createDirectory(atPath: file("state"), withIntermediateDirectories: true)
        chown(file("state"), 65_534, 65_534)
        let r = try hocvu(["hub", "enroll", "--db", file("state/hub.sqlite"), "--keys", file("keys"), "--commune", "70",
                           "--identity", hex32, "--transport", hex32])
        #expect(r.status == 0, "\(r.err)")
        var st = stat()
        #expect(stat(file("state/hub.sqlite"), &st) == 0 && st.st_uid == 65_534, "the service user can write what root created")
    }
}
