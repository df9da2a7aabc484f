import Dispatch
import Foundation
import HubPostgres
import PostgresNIO
import Merge
import Model
import Sodium
import Store
import Synchronization
import TestSupport
import Transport
import Wire

/// The fleet: every commune (3,321 real codes) as a lightweight simulated site — its own Ed25519
/// identity, CURVE key, DEALER socket and signed batch of results — connecting at once to a real
/// `hocvu hub run` process. Measures the time until every site holds an ACK for its results, and
/// the hub process's peak RSS.
struct FleetBenchmark {
    let sites: Int
    let results: Int
    let threads: Int
    let directory: String
    /// The `hocvu` binary run as the hub (and to make its keys, so they are in the files' real format).
    let hocvu: String
    /// A PostgreSQL cluster (host or socket directory, port, role that may create databases): then
    /// `hubs` hub processes share a new database (docs/multi-hub.md); nil: one hub on SQLite.
    var postgres: (host: String, port: Int, user: String)? = nil
    var hubs = 1

    struct Report {
        var sites = 0
        var results = 0
        var seconds = 0.0
        var hubPeakRSSKiB = 0
        var attemptsAtHub = 0
        var connectSeconds = 0.0
    }

    struct SimSite {
        let commune: Int
        let identity: SigningKeyPair
        let transport: BoxKeyPair
        let batch: Batch
    }

    func run(log: (String) -> Void) throws -> Report {
        let dir = "\(directory)/hocvu-bench-fleet"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let communes = Array(try AdminUnits.bundled().provinces.flatMap(\.communes).map(\.code).prefix(sites))

        log("preparing \(communes.count) sites: keys, enrollment, \(results) signed results each…")
        let hubKeys = try hubKeyFiles(in: "\(dir)/hub-keys")
        let hubStore = try NodeStore(path: "\(dir)/hub.sqlite", identity: hubKeys.identity)
        let curriculum = SampleCurriculum.make()
        try hubStore.installCurriculum(curriculum)
        // On PostgreSQL: a new database, migrated; enrollments go there, and each hub has its own view.
        var shared: PostgresHubLog?
        var database = ""
        if let pg = postgres {
            database = "hocvu_fleet_\(UInt32.random(in: 0...UInt32.max))"
            try createDatabase(database, pg)
            shared = PostgresHubLog(
                .init(host: pg.host, port: pg.port, database: database, user: pg.user, tls: "disable", timeoutSeconds: 20, hubName: "bench"),
                logger: benchLogger())
            try shared!.migrate()
            for h in 1..<max(1, hubs) {
                let view = try NodeStore(path: "\(dir)/hub\(h).sqlite", identity: hubKeys.identity)
                try view.installCurriculum(curriculum)
            }
        }
        defer { shared?.close() }
        let quiz = curriculum.courses[0].quizzes[0]
        var rng = SeededGenerator(seed: 3_321)
        let now = NodeStore.systemNow()
        var fleet = [SimSite]()
        for (i, commune) in communes.enumerated() {
            let identity = SigningKeyPair.generate(), transport = BoxKeyPair.generate()
            if let shared {
                try shared.enroll(communeCode: commune, identityKey: identity.publicKey, transportKey: transport.publicKey, at: now)
            } else {
                try hubStore.enroll(communeCode: commune, identityKey: identity.publicKey, transportKey: transport.publicKey)
            }
            let changes = (0..<results).map { r -> Change in
                let finished = now - Int64(results - r) * 1_000
                let learner = Identity.learnerID(nationalID: String(format: "%06d%06d", i, r))
                return Change(
                    hlc: HLCTimestamp(milliseconds: UInt64(finished), counter: 0),
                    record: .attempt(AttemptRecord(
                        attemptID: RecordID.uuidV7(milliseconds: UInt64(finished), using: &rng), learnerID: learner,
                        quizID: quiz.id, answers: quiz.questions.map { _ in 1 }, score: 8, maxScore: quiz.maxScore,
                        startedAt: finished - 60_000, finishedAt: finished)))
            }
            let origin = Origin(node: NodeID(bytes: identity.publicKey)!, epoch: 1)
            fleet.append(SimSite(
                commune: commune, identity: identity, transport: transport,
                batch: Batch.seal(changes: changes, origin: origin, firstSeq: 1, previousID: Batch.zeroID, signer: identity)))
        }
        raiseFileLimit()

        var endpoints = [String]()
        var processes = [Process]()
        for h in 0..<(postgres == nil ? 1 : max(1, hubs)) {
            let port = Int.random(in: 30_000...50_000)
            let endpoint = "tcp://127.0.0.1:\(port)"
            let hub = Process()
            hub.executableURL = URL(fileURLWithPath: hocvu)
            let db = h == 0 ? "\(dir)/hub.sqlite" : "\(dir)/hub\(h).sqlite"
            if let pg = postgres {
                let config = "\(dir)/hub\(h).toml"
                try """
                    role = "hub"
                    [node]
                    database = "\(db)"
                    keys = "\(dir)/hub-keys"
                    status = "\(dir)/hub\(h)-status.json"
                    [listen]
                    endpoint = "\(endpoint)"
                    [metrics]
                    listen = "off"
                    [store]
                    backend = "postgresql"
                    host = "\(pg.host)"
                    port = \(pg.port)
                    database = "\(database)"
                    user = "\(pg.user)"
                    tls = "disable"
                    timeout = 20
                    name = "hub-\(h)"
                    """.write(toFile: config, atomically: true, encoding: .utf8)
                hub.arguments = ["hub", "run", "--config", config]
            } else {
                hub.arguments = ["hub", "run", "--db", db, "--keys", "\(dir)/hub-keys", "--bind", endpoint]
            }
            hub.standardError = FileHandle(forWritingAtPath: "\(dir)/hub.log")
            try hub.run()
            endpoints.append(endpoint)
            processes.append(hub)
        }
        defer { for hub in processes where hub.isRunning { hub.terminate(); hub.waitUntilExit() } }
        // Every hub has read the enrollments (a hub on PostgreSQL loads them when it starts).
        usleep(postgres == nil ? 500_000 : 2_000_000)

        log("\(fleet.count) sites connect at once, each uploads \(results) results…")
        let done = SharedCount(0)
        let t0 = ContinuousClock.now
        let group = DispatchGroup()
        let per = (fleet.count + threads - 1) / threads
        for t in 0..<threads {
            let slice = Array(fleet[min(fleet.count, t * per)..<min(fleet.count, (t + 1) * per)])
            let endpoint = endpoints[t % endpoints.count]  // threads (and so sites) spread over the hubs
            group.enter()
            Thread {
                defer { group.leave() }
                do { try simulate(slice, endpoint: endpoint, hubKey: hubKeys.transport.publicKey, done: done) } catch {
                    FileHandle.standardError.write(Data("bench: simulator thread failed: \(error)\n".utf8))
                }
            }.start()
        }
        group.wait()
        var report = Report()
        report.seconds = (ContinuousClock.now - t0).seconds
        report.sites = done.value
        report.results = done.value * results
        report.hubPeakRSSKiB = processes.map { peakRSS(pid: $0.processIdentifier) }.max() ?? 0
        if let shared {
            // What the shared log acknowledged (each result is one change of one batch per site).
            report.attemptsAtHub = try shared.counts().changes
        }
        for hub in processes {
            hub.terminate()
            hub.waitUntilExit()
        }
        if shared == nil { report.attemptsAtHub = try hubStore.attemptsCountForTests("attempt") }
        if let pg = postgres { try? dropDatabase(database, pg) }
        return report
    }

    /// The hub's keys, made by `hocvu keygen` (the files `hocvu hub run --keys` reads) and read back:
    /// the benchmark opens the hub's database with the same identity before the hub process starts.
    private func hubKeyFiles(in keys: String) throws -> (identity: SigningKeyPair, transport: BoxKeyPair) {
        let keygen = Process()
        keygen.executableURL = URL(fileURLWithPath: hocvu)
        keygen.arguments = ["keygen", "--dir", keys, "--force"]
        keygen.standardOutput = FileHandle.nullDevice
        try keygen.run()
        keygen.waitUntilExit()
        guard keygen.terminationStatus == 0 else { throw BenchFailure("\(hocvu) keygen --dir \(keys) failed (status \(keygen.terminationStatus))") }
        func secret(_ name: String, bytes: Int) throws -> Data {
            let text = try String(contentsOfFile: "\(keys)/\(name)", encoding: .utf8)
            guard let data = Data(hex: text.trimmingCharacters(in: .whitespacesAndNewlines)), data.count == bytes else {
                throw BenchFailure("\(keys)/\(name) is not a hocvu key file (expected \(bytes * 2) hex characters)")
            }
            return data
        }
        return (try SigningKeyPair(secretKey: secret("identity.key", bytes: 64)), try BoxKeyPair(secretKey: secret("transport.key", bytes: 32)))
    }

    /// One thread drives many sites: HELLO, then the batch on WELCOME, done on an ACK that covers it.
    private func simulate(_ sites: [SimSite], endpoint: String, hubKey: Data, done: SharedCount) throws {
        let context = try ZMQContext(maxSockets: Int32(sites.count + 16))
        var sockets = [ZMQSocket]()
        for s in sites {
            let d = try ZMQSocket(context, .dealer)
            try d.makeCurveClient(publicKey: s.transport.publicKey, secretKey: s.transport.secretKey, serverKey: hubKey)
            try d.setReconnect(initial: 500 + Int32.random(in: 0...1_000), max: 10_000)
            try d.connect(endpoint)
            let hello = WireMessage.Hello(
                origin: s.batch.origin, clockMilliseconds: NodeStore.systemNow(), releaseVersion: 1, knowledge: VersionVector())
            _ = try d.send(WireCodec.encode(.hello(hello), id: 1))  // queued until the handshake completes
            sockets.append(d)
        }
        var finished = [Bool](repeating: false, count: sites.count)
        var remaining = sites.count
        let deadline = Date().addingTimeInterval(600)
        while remaining > 0, Date() < deadline {
            let ready = try zmqPoll(sockets, timeoutMilliseconds: 200)
            for (i, r) in ready.sockets.enumerated() where r && !finished[i] {
                while let m = try sockets[i].receive(maxFrames: 3) {
                    guard let (_, message) = try? WireCodec.decode(m.frames) else { continue }
                    switch message {
                    case .welcome:
                        _ = try sockets[i].send(WireCodec.encode(.batches([sites[i].batch]), id: 2))
                    case .ack(let a) where a.have[sites[i].batch.origin] >= sites[i].batch.lastSeq:
                        finished[i] = true
                        remaining -= 1
                        done.add(1)
                    default:
                        break
                    }
                    if finished[i] { break }
                }
            }
        }
        sockets.forEach { $0.close() }
    }

    private func peakRSS(pid: Int32) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return -1 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
        }
        return -1
    }

    private func raiseFileLimit() {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}

/// A counter shared by the simulator threads.
final class SharedCount: Sendable {
    private let v: Atomic<Int>
    init(_ v: Int) { self.v = Atomic(v) }
    func add(_ n: Int) { v.add(n, ordering: .relaxed) }
    var value: Int { v.load(ordering: .relaxed) }
}

extension FleetBenchmark {
    private func admin(_ pg: (host: String, port: Int, user: String)) -> PostgresClient {
        let c: PostgresClient.Configuration =
            pg.host.hasPrefix("/")
            ? .init(unixSocketPath: "\(pg.host)/.s.PGSQL.\(pg.port)", username: pg.user, password: nil, database: "postgres")
            : .init(host: pg.host, port: pg.port, username: pg.user, password: nil, database: "postgres", tls: .disable)
        return PostgresClient(configuration: c, backgroundLogger: benchLogger())
    }

    /// Set-up SQL outside the log under test, from this thread (the benchmark is not async here).
    private func adminQuery(_ sql: String, _ pg: (host: String, port: Int, user: String)) throws {
        let client = admin(pg)
        let done = DispatchSemaphore(value: 0)
        let failure = Mutex<String?>(nil)
        Task {
            let runner = Task { await client.run() }
            do { try await client.query(PostgresQuery(unsafeSQL: sql)) } catch { failure.withLock { $0 = "\(String(reflecting: error))" } }
            runner.cancel()
            done.signal()
        }
        done.wait()
        if let f = failure.withLock({ $0 }) { throw BenchFailure("PostgreSQL: \(f)") }
    }

    func createDatabase(_ name: String, _ pg: (host: String, port: Int, user: String)) throws {
        try adminQuery("CREATE DATABASE \(name)", pg)
    }

    func dropDatabase(_ name: String, _ pg: (host: String, port: Int, user: String)) throws {
        try adminQuery("DROP DATABASE IF EXISTS \(name) WITH (FORCE)", pg)
    }
}
