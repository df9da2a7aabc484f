import Dispatch
import Foundation
@testable import HubPostgres
import Merge
import Model
import Node
import Sodium
import Store
import Synchronization
import TestSupport
import Testing

/// `hocvu` next to the test bundle (built by `swift build`/`swift test`).
private let hocvuBinary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("hocvu").path
private let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

/// Runs a command that starts a server (pg_ctl) to its end, its output not captured, with
/// posix_spawn and waitpid: the server must not inherit a pipe of ours, and Foundation's Process was
/// seen to miss the exit of a child whose grandchild (the server) lives on.
private func runDetached(_ path: String, _ arguments: [String]) throws -> Int32 {
    var pid = pid_t()
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    for fd: Int32 in [0, 1, 2] { posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0) }
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    guard posix_spawn(&pid, path, &actions, nil, argv, environ) == 0 else { return -1 }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    return status
}

/// Runs a command to its end. - Returns: its exit status and standard output.
@discardableResult
private func run(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = arguments
    let out = Pipe()
    p.standardOutput = out
    p.standardError = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// A TCP port nothing listens on now.
private func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

extension HubPostgresTests {
    /// The issue's "done when": real `hocvu hub run` processes on real PostgreSQL; one is killed with
    /// SIGKILL while sites upload; every site finishes on the other; the database is then stopped
    /// and started under load. The surviving hub's totals equal the ground truth, nothing is
    /// quarantined or duplicated.
    @Test("a fleet upload survives SIGKILL of one of two hub processes and a database restart; totals equal the ground truth")
    func failoverOnRealProcesses() throws {
        let dir = try TemporaryDirectory(prefix: "hocvu-failover")
        defer { dir.remove() }
        let database = try TestPostgres.freshDatabase(migrated: false)
        let admin = TestPostgres.log(database: database, hub: "test")
        defer { admin.close() }
        // One key pair for both hub processes (docs/multi-hub.md).
        let hubIdentity = SigningKeyPair.generate()
        let hubTransport = BoxKeyPair.generate()
        let keys = dir.file("hub-keys")
        try FileManager.default.createDirectory(atPath: keys, withIntermediateDirectories: true)
        try Data((hubIdentity.secretKey.hexString + "\n").utf8).write(to: URL(fileURLWithPath: "\(keys)/identity.key"))
        try Data((hubTransport.secretKey.hexString + "\n").utf8).write(to: URL(fileURLWithPath: "\(keys)/transport.key"))
        for k in ["identity.key", "transport.key"] { chmod("\(keys)/\(k)", 0o600) }
        var endpoints = [String]()
        var configs = [String]()
        var metricsPorts = [Int]()
        for name in ["a", "b"] {
            do {  // each view holds the curriculum the sites record against
                let view = try NodeStore(path: dir.file("hub-\(name).sqlite"), identity: hubIdentity)
                try view.installCurriculum(SampleCurriculum.make())
            }
            let port = freePort()
            let metrics = freePort()
            endpoints.append("tcp://127.0.0.1:\(port)")
            metricsPorts.append(metrics)
            let config = dir.file("hub-\(name).toml")
            try """
                role = "hub"
                [node]
                database = "\(dir.file("hub-\(name).sqlite"))"
                keys = "\(keys)"
                status = "\(dir.file("hub-\(name)-status.json"))"
                [listen]
                endpoint = "tcp://127.0.0.1:\(port)"
                [log]
                level = "warning"
                [metrics]
                listen = "127.0.0.1:\(metrics)"
                [store]
                backend = "postgresql"
                host = "\(TestPostgres.host)"
                port = \(TestPostgres.port)
                database = "\(database)"
                user = "\(TestPostgres.user)"
                tls = "disable"
                timeout = 3
                name = "hub-\(name)"
                """.write(toFile: config, atomically: true, encoding: .utf8)
            configs.append(config)
        }
        // A hub refuses a database without the schema, naming the command; the command makes it.
        let refused = try run(hocvuBinary, ["hub", "run", "--config", configs[0]])
        #expect(refused.status != 0 && refused.output.contains("hocvu hub migrate"))
        #expect(try run(hocvuBinary, ["hub", "migrate", "--config", configs[0]]).status == 0)
        #expect(try run(hocvuBinary, ["hub", "migrate", "--config", configs[1]]).output.contains("nothing to do"))

        // Six sites, enrolled once in the shared database, for both hubs.
        var sites = [(commune: Int, store: NodeStore, transport: BoxKeyPair)]()
        for i in 0..<6 {
            let identity = SigningKeyPair.generate()
            let transport = BoxKeyPair.generate()
            sites.append((testCommunes[i], try siteStore(dir, "site\(i)", key: identity), transport))
            let enrolled = try run(hocvuBinary, [
                "hub", "enroll", "--config", configs[i % 2], "--commune", "\(testCommunes[i])",
                "--identity", identity.publicKey.hexString, "--transport", transport.publicKey.hexString,
            ])
            #expect(enrolled.status == 0, "\(enrolled.output)")
        }
        func startHub(_ i: Int) throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: hocvuBinary)
            p.arguments = ["hub", "run", "--config", configs[i]]
            p.standardError = FileHandle(forWritingAtPath: "/dev/null")
            p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            try p.run()
            return p
        }
        let hubA = try startHub(0)
        let hubB = try startHub(1)
        defer {
            for p in [hubA, hubB] where p.isRunning {
                p.terminate()
                p.waitUntilExit()
            }
        }
        #expect(try eventually(60) { [0, 1].allSatisfy { FileManager.default.fileExists(atPath: dir.file("hub-\(["a", "b"][$0])-status.json")) } })

        // Ground truth: what the sites recorded. Some before the hubs, more during the upload.
        for (i, s) in sites.enumerated() { try s.store.recordResults(commune: s.commune, first: i * 10_000, count: 40) }
        var clients = [SiteClient]()
        for (i, s) in sites.enumerated() {
            var c = SiteClient.Configuration(hubEndpoint: endpoints[0], hubTransportKey: hubTransport.publicKey, transportKeys: s.transport)
            c.hubEndpoints = i < 5 ? endpoints : endpoints.reversed()  // most on hub A, which will die
            c.failoverAfterMilliseconds = 1_000
            c.reconnectBase = 100
            c.hubIdentityKey = hubIdentity.publicKey
            let client = try SiteClient(store: s.store, configuration: c, logger: quietLogger)
            try client.start()
            clients.append(client)
        }
        defer { clients.forEach { $0.stop() } }
        let recording = Atomic<Bool>(true)
        let recorded = Mutex([Int](repeating: 40, count: 6))
        let (fleet, engines) = (sites.map { ($0.commune, $0.store) }, clients)
        let recorderDone = DispatchSemaphore(value: 0)
        let recorder = Thread {
            defer { recorderDone.signal() }
            while recording.load(ordering: .relaxed) {
                for (i, s) in fleet.enumerated() {
                    let n = recorded.withLock { $0[i] }
                    // Counted only when recorded: a full disk here would fail the totals check, not hide.
                    if (try? s.1.recordResults(commune: s.0, first: i * 10_000 + n, count: 1)) != nil {
                        recorded.withLock { $0[i] += 1 }
                    }
                    engines[i].wake()
                }
                usleep(200_000)  // 30 learners a second in all: well within a debug build's hub
            }
        }
        recorder.start()
        func logHasAll() throws -> Bool {
            let heads = try admin.heads()
            return try sites.allSatisfy { s in
                try s.store.sealPending()
                return try s.store.versionVector().restricted(to: s.store.node).entries.allSatisfy { heads[$0.key] >= $0.value }
            }
        }

        // Hub A has taken part of the upload: kill it, no goodbye.
        #expect(try eventually(90) { try admin.counts().batches >= 12 })
        kill(hubA.processIdentifier, SIGKILL)
        hubA.waitUntilExit()
        Thread.sleep(forTimeInterval: 2)

        // The database goes away under load, and comes back: hub B says so, acknowledges nothing meanwhile, goes on.
        if let cluster = TestPostgres.clusterDirectory {
            #expect(try runDetached("/bin/bash", ["\(repositoryRoot)/ops/pg-test-cluster.sh", "halt", cluster]) == 0)
            let statusB = dir.file("hub-b-status.json")
            #expect(try eventually(60) { (try? String(contentsOfFile: statusB, encoding: .utf8))?.contains("unreachable") == true })
            #expect(try eventually(5) {
                try run("/usr/bin/curl", ["-sf", "http://127.0.0.1:\(metricsPorts[1])/metrics"]).output.contains("hocvu_hub_shared_database_up 0")
            })
            Thread.sleep(forTimeInterval: 2)
            #expect(try runDetached("/bin/bash", ["\(repositoryRoot)/ops/pg-test-cluster.sh", "resume", cluster]) == 0)
            #expect(try eventually(90) { (try? String(contentsOfFile: statusB, encoding: .utf8))?.contains("\"ok\"") == true })
        }
        Thread.sleep(forTimeInterval: 1)
        recording.store(false, ordering: .relaxed)
        recorderDone.wait()

        // Every site finished on hub B: the log holds everything every site sealed. (Generous waits:
        // under a full parallel `swift test` on 2 cores this test was seen to take 140 s, alone 14 s.)
        #expect(try eventually(240) { try logHasAll() })
        #expect(clients[0].status.hubEndpoint == endpoints[1])
        let total = recorded.withLock { $0.reduce(0, +) }

        // Ground truth: one SQLite hub that took every site's batches directly.
        let reference = try NodeStore(path: dir.file("reference.sqlite"), identity: .generate())
        try reference.installCurriculum(SampleCurriculum.make())
        for s in sites { _ = try reference.apply(try s.store.ownBatches(after: VersionVector(), maxBytes: .max)) }
        let truth = try reference.nationalReport().national
        #expect(truth.learners == total)

        // Hub B's report (its view, read by the CLI while it runs) reaches the ground truth.
        func figuresOfB() throws -> [String: Any]? {
            let r = try run(hocvuBinary, ["hub", "report", "--db", dir.file("hub-b.sqlite"), "--format", "json"])
            guard r.status == 0, let json = try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any] else { return nil }
            return json["national"] as? [String: Any]
        }
        #expect(try eventually(120) { try figuresOfB()?["learners"] as? Int == truth.learners })
        let b = try figuresOfB() ?? [:]
        #expect(b["enrolled"] as? Int == truth.enrolled)
        #expect(b["certified"] as? Int == truth.certified)
        #expect(b["learners"] as? Int == total)

        // Nothing quarantined, nothing duplicated: the log holds each site's history exactly once.
        let counts = try admin.counts()
        #expect(counts.quarantinedOrigins == 0)
        let sealed = try sites.reduce(0) { $0 + Int(try $1.store.versionVector().restricted(to: $1.store.node).entries.values.reduce(0, +)) }
        #expect(counts.changes == sealed)
        let quarantined = try run("/usr/bin/sqlite3", ["-readonly", dir.file("hub-b.sqlite"), "SELECT count(*) FROM quarantine"])
        #expect(quarantined.output.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
    }
}
