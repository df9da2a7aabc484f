import Foundation
import Logging
import Merge
import Model
import Node
import Sodium
import Store
import TestSupport
import Transport
import Wire

/// Replication benchmarks on tcp loopback (a result = one quiz attempt; each learner registers once and makes four), signed and over CURVE:
/// ingest from N sites vs raw SQLite INSERTs of the same rows; bytes on the wire per result;
/// write → visible-at-hub latency; a no-op sync round.
struct IngestBenchmark {
    let results: Int
    let sites: Int
    let directory: String
    let latencySamples: Int

    struct Report {
        var results = 0
        var ingestSeconds = 0.0
        var rawSeconds = 0.0
        var wireBytes = 0
        var latenciesMs: [Double] = []
        var noopRoundsMs: [Double] = []
    }

    func run(log: (String) -> Void) throws -> Report {
        var report = Report()
        let dir = "\(directory)/hocvu-bench-ingest"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // Problems (a stopped loop, a refusal) still show; routine connection logs do not.
        let logger = benchLogger()
        let curriculum = SampleCurriculum.make()

        let hubStore = try NodeStore(path: "\(dir)/hub.sqlite", identity: .generate())
        try hubStore.installCurriculum(curriculum)
        let hubKeys = BoxKeyPair.generate()

        let (siteStores, rows) = try Self.recordSites(results: results, sites: sites, directory: dir, log: log) {
            try hubStore.enroll(communeCode: $0, identityKey: $1, transportKey: $2)
        }
        let perSite = results / sites
        report.results = perSite * sites

        // Ingest: start the hub and every site at once; stop the clock when the hub holds everything.
        let hub = HubServer(store: hubStore, configuration: .init(bind: "tcp://127.0.0.1:*", transportKeys: hubKeys), logger: logger)
        let endpoint = try hub.start()
        let wire0 = try loopbackBytes()
        log("ingesting over CURVE…")
        let t0 = ContinuousClock.now
        var clients = [SiteClient]()
        for (store, keys, _) in siteStores {
            var config = SiteClient.Configuration(hubEndpoint: endpoint, hubTransportKey: hubKeys.publicKey, transportKeys: keys)
            config.reconnectBase = 100
            let c = try SiteClient(store: store, configuration: config, logger: logger)
            try c.start()
            clients.append(c)
        }
        let targets = try siteStores.map { try $0.0.versionVector() }
        while true {
            let vv = try hubStore.versionVector()
            if targets.allSatisfy({ vv.dominates($0) }) { break }
            usleep(2_000)
        }
        report.ingestSeconds = (ContinuousClock.now - t0).seconds
        report.wireBytes = try loopbackBytes() - wire0

        // Latency: one result at a time at a connected site, until the hub holds it.
        log("measuring write → hub latency (\(latencySamples) samples)…")
        for k in 0..<latencySamples {
            let (store, _, commune) = siteStores[k % siteStores.count]
            let nid = String(format: "9%02d%09d", k % siteStores.count, k)
            let start = ContinuousClock.now
            try store.record([.registerLearner(nationalID: nid, fullName: "Học viên", role: .other, unit: "UBND", homeCommune: commune)])
            clients[k % clients.count].wake()
            try store.sealPending(maxChanges: 256)
            let want = try store.versionVector()
            while !(try hubStore.versionVector().dominates(want.restricted(to: store.node))) { usleep(200) }
            report.latenciesMs.append((ContinuousClock.now - start).seconds * 1_000)
            usleep(20_000)
        }
        for c in clients { c.stop() }

        // A no-op round: HELLO → WELCOME on an open connection, nothing to send.
        log("measuring no-op sync rounds…")
        let (store0, keys0, _) = siteStores[0]
        let context = try ZMQContext()
        let dealer = try ZMQSocket(context, .dealer)
        try dealer.makeCurveClient(publicKey: keys0.publicKey, secretKey: keys0.secretKey, serverKey: hubKeys.publicKey)
        try dealer.connect(endpoint)
        let hello = WireMessage.hello(.init(
            origin: try store0.currentOrigin(), clockMilliseconds: NodeStore.systemNow(), releaseVersion: 1,
            knowledge: try store0.versionVector()))
        for i in 0..<101 {
            let t = ContinuousClock.now
            _ = try dealer.send(WireCodec.encode(hello, id: UInt64(i + 1)))
            var got = false
            while !got {
                _ = try zmqPoll([dealer], timeoutMilliseconds: 1_000)
                if let m = try dealer.receive(), case .welcome = try WireCodec.decode(m.frames).message { got = true }
            }
            if i > 0 { report.noopRoundsMs.append((ContinuousClock.now - t).seconds * 1_000) }  // first includes the handshake
        }
        dealer.close()
        hub.stop()

        // Raw baseline: the same attempt rows, bare table, prepared INSERTs, one transaction.
        log("raw baseline…")
        let raw = try RawSQLite(path: "\(dir)/raw.sqlite")
        defer { raw.close() }
        try raw.createAttemptTable()
        let t1 = ContinuousClock.now
        try raw.exec("BEGIN")
        try raw.insertAttempts(rows)
        try raw.exec("COMMIT")
        report.rawSeconds = (ContinuousClock.now - t1).seconds
        try? FileManager.default.removeItem(atPath: dir)
        return report
    }
}

extension IngestBenchmark {
    /// Each site: its learners (four results each = four attempts), recorded and sealed locally
    /// first, and enrolled through `enroll(commune, identity, transport)`. Also returns the attempt
    /// rows for a raw baseline, learner ids included (nothing is hashed while timed).
    static func recordSites(
        results: Int, sites: Int, directory dir: String, log: (String) -> Void, enroll: (Int, Data, Data) throws -> Void
    ) throws -> (sites: [(NodeStore, BoxKeyPair, Int)], rows: [AttemptRecord]) {
        let curriculum = SampleCurriculum.make()
        let quiz = curriculum.courses[0].quizzes[0]
        let communes = try AdminUnits.bundled().provinces.flatMap(\.communes).map(\.code)
        log("recording \(results) results at \(sites) sites…")
        var siteStores = [(NodeStore, BoxKeyPair, Int)]()
        let perSite = results / sites
        var rows = [AttemptRecord]()
        for s in 0..<sites {
            let identity = SigningKeyPair.generate()
            let transport = BoxKeyPair.generate()
            let commune = communes[s % communes.count]
            let store = try NodeStore(path: "\(dir)/site-\(s).sqlite", identity: identity)
            try store.installCurriculum(curriculum)
            try enroll(commune, identity.publicKey, transport.publicKey)
            let now = NodeStore.systemNow()
            // Each learner registers once and makes four quiz attempts (four results).
            var i = 0
            while i < perSite {
                var events = [LocalEvent]()
                let n = min(2_000, perSite - i)
                for k in stride(from: i, to: i + n, by: 4) {
                    let nid = String(format: "%03d%09d", s, k)
                    events.append(.registerLearner(nationalID: nid, fullName: "Học viên", role: .civilServant, unit: "UBND", homeCommune: commune))
                    for a in k..<min(k + 4, i + n) {
                        events.append(.attempt(
                            learnerID: Identity.learnerID(nationalID: nid), quizID: quiz.id, answers: [0, 1, 2, 3, 0],
                            score: (a * 7) % 11, maxScore: quiz.maxScore, startedAt: now - 60_000, finishedAt: now))
                    }
                }
                // The same rows for the raw baseline, learner ids included (nothing is hashed while timed).
                for (event, outcome) in zip(events, try store.record(events)) {
                    guard case .attempt(let id) = outcome,
                          case .attempt(let learner, _, let answers, let score, let max, let started, let finished) = event
                    else { continue }
                    rows.append(AttemptRecord(
                        attemptID: id, learnerID: learner, quizID: quiz.id, answers: answers, score: score, maxScore: max,
                        startedAt: started, finishedAt: finished))
                }
                i += n
            }
            try store.sealPending(maxChanges: 256)
            siteStores.append((store, transport, commune))
        }
        return (siteStores, rows)
    }
}
