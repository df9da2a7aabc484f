import Foundation
import Logging
import Merge
import Model
import Node
import Release
import Sodium
import Store
import TestSupport
import Transport

/// Bytes on the loopback interface so far (TCP/IP headers and CURVE included: what a link carries).
func loopbackBytes() throws -> Int { try loopbackCounters().bytes }

/// Transmit bytes and packets of the loopback interface so far. Each packet carries 52 bytes of
/// IPv4 and TCP headers (20 + 32 with the timestamp option), which rsync's own byte counts leave out.
func loopbackCounters() throws -> (bytes: Int, packets: Int) {
    let text = try String(contentsOfFile: "/proc/net/dev", encoding: .utf8)
    for line in text.split(separator: "\n") where line.trimmingCharacters(in: .whitespaces).hasPrefix("lo:") {
        let fields = line.split(separator: ":")[1].split(separator: " ")
        return (Int(fields[8]) ?? 0, Int(fields[9]) ?? 0)  // transmit bytes, packets
    }
    return (0, 0)
}

/// A hub with releases and helpers to run sites against it, for the release benchmarks.
struct ReleaseBench {
    let dir: String
    let fixture: ReleaseFixture
    let hubStore: NodeStore
    let hubKeys = BoxKeyPair.generate()
    let hub: HubServer
    let endpoint: String
    let logger = benchLogger()

    init(dir: String, mediaBytes: Int, files: Int, maxTransfers: Int) throws {
        self.dir = dir
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        fixture = try ReleaseFixture(root: "\(dir)/admin", mediaBytes: mediaBytes, extraMediaFiles: files - 1)
        hubStore = try NodeStore(path: "\(dir)/hub.sqlite", identity: .generate())
        var config = HubServer.Configuration(bind: "tcp://127.0.0.1:*", transportKeys: hubKeys)
        config.releases = .init(trust: fixture.trust, chunkDirectory: "\(dir)/hub-chunks")
        config.releases!.maxConcurrentTransfers = maxTransfers
        hub = HubServer(store: hubStore, configuration: config, logger: logger)
        endpoint = try hub.start()
    }

    func publish(version: UInt64) throws {
        let bundle = try fixture.build(version: version)
        _ = try ReleasePublisher(
            hubEndpoint: endpoint, hubTransportKey: hubKeys.publicKey, transportKeys: fixture.admins[0].transport, logger: logger
        ).publish(bundle)
    }

    func manifest(_ version: UInt64) throws -> Manifest {
        try Manifest.decode(ReleaseBundle(directory: "\(fixture.root)/release-\(version)").manifestBytes())
    }

    struct Site {
        let store: NodeStore
        let transport: BoxKeyPair
        let chunks: String
    }

    func makeSite(_ i: Int, commune: Int) throws -> Site {
        let identity = SigningKeyPair.generate(), transport = BoxKeyPair.generate()
        let store = try NodeStore(path: "\(dir)/site-\(i).sqlite", identity: identity)
        try hubStore.enroll(communeCode: commune, identityKey: identity.publicKey, transportKey: transport.publicKey)
        return Site(store: store, transport: transport, chunks: "\(dir)/site-\(i)-chunks")
    }

    func client(_ s: Site, deltas: Bool = true) throws -> SiteClient {
        var config = SiteClient.Configuration(hubEndpoint: endpoint, hubTransportKey: hubKeys.publicKey, transportKeys: s.transport)
        config.releaseDeltas = deltas
        config.reconnectBase = 100
        config.trust = fixture.trust
        config.chunkDirectory = s.chunks
        return try SiteClient(store: s.store, configuration: config, logger: logger)
    }

    /// Runs a site until it has installed `version`.
    func fetch(_ s: Site, version: UInt64, deltas: Bool = true) throws {
        let c = try client(s, deltas: deltas)
        try c.start()
        defer { c.stop() }
        while (try s.store.curriculumVersion() ?? 0) < version { usleep(5_000) }
    }
}

/// (a) A large release, then edits that insert bytes mid-file into one lesson's media: bytes on
/// the wire for a site to follow each edit, vs bytes changed, vs rsync on the same edit.
struct ReleaseEditBenchmark {
    let mebibytes: Int
    let insertions: [Int]
    let directory: String

    struct Row {
        var inserted: Int; var chunkBytes: Int; var wireBytes: Int; var rsyncBytes: Int; var rsyncLiteral: Int
        /// The same edit fetched by a second site that takes no deltas (whole offer and chunks: the
        /// protocol before minor 4), in the same run.
        var wholeWireBytes = 0
        /// Loopback packets while the delta site fetched: wire bytes − 52 × packets is the TCP stream
        /// (CURVE and ZMTP framing included), what rsync's figure counts.
        var packets = 0
        /// The new manifest's size (what a whole offer carries), and the chunks the hub sent as deltas with their bytes.
        var manifestBytes = 0; var deltaChunks = 0; var deltaBytes = 0
    }

    func run(log: (String) -> Void) throws -> (fullWire: Int, total: Int, rows: [Row]) {
        let files = 8
        let bench = try ReleaseBench(
            dir: "\(directory)/hocvu-bench-release-edit", mediaBytes: (mebibytes << 20) / files, files: files, maxTransfers: 64)
        defer { bench.hub.stop(); try? FileManager.default.removeItem(atPath: bench.dir) }
        let site = try bench.makeSite(0, commune: 70)
        let wholeSite = try bench.makeSite(1, commune: 73)
        log("building and publishing release 1 (\(mebibytes) MiB)…")
        try bench.publish(version: 1)
        var lo = try loopbackBytes()
        try bench.fetch(site, version: 1)
        let fullWire = try loopbackBytes() - lo
        try bench.fetch(wholeSite, version: 1, deltas: false)
        let total = try bench.manifest(1).totalBytes
        var rows = [Row]()
        for (k, n) in insertions.enumerated() {
            let version = UInt64(k + 2)
            // rsync's view: yesterday's tree at the receiver, today's at the sender.
            let before = "\(bench.dir)/rsync-dest"
            try? FileManager.default.removeItem(atPath: before)
            try run("/bin/cp", ["-a", bench.fixture.source, before])  // keeps mtimes: rsync skips unchanged files
            let old = try bench.manifest(version - 1)
            try bench.fixture.insertIntoMedia(count: n, seed: 1_000 + UInt64(k))
            log("edit \(k + 1): \(n) bytes inserted; publishing release \(version)…")
            try bench.publish(version: version)
            let new = try bench.manifest(version)
            let oldChunks = Set(old.chunks.map(\.hash))
            lo = try loopbackBytes()
            try bench.fetch(wholeSite, version: version, deltas: false)
            let wholeWire = try loopbackBytes() - lo
            let statsBefore = bench.hub.stats
            let counters = try loopbackCounters()
            try bench.fetch(site, version: version)
            let wire = try loopbackCounters().bytes - counters.bytes
            let packets = try loopbackCounters().packets - counters.packets
            let statsAfter = bench.hub.stats
            let (sent, literal) = try rsync(from: bench.fixture.source, to: before)
            rows.append(Row(
                inserted: n, chunkBytes: new.chunks.filter { !oldChunks.contains($0.hash) }.reduce(0) { $0 + $1.size },
                wireBytes: wire, rsyncBytes: sent, rsyncLiteral: literal, wholeWireBytes: wholeWire, packets: packets,
                manifestBytes: try ReleaseBundle(directory: "\(bench.fixture.root)/release-\(version)").manifestBytes().count,
                deltaChunks: statsAfter.chunkDeltasServed - statsBefore.chunkDeltasServed,
                deltaBytes: statsAfter.chunkDeltaBytesServed - statsBefore.chunkDeltaBytesServed))
        }
        return (fullWire, total, rows)
    }

    private func run(_ tool: String, _ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        try p.run()
        p.waitUntilExit()
    }

    /// rsync's delta transfer between two local trees; returns (total bytes sent + received, literal data).
    private func rsync(from: String, to: String) throws -> (Int, Int) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/rsync")
        p.arguments = ["-rt", "--no-whole-file", "--stats", from + "/", to + "/"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        func number(_ label: String) -> Int {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(label) }) else { return -1 }
            return Int(line.dropFirst(label.count).split(separator: " ")[0].replacingOccurrences(of: ",", with: "")) ?? -1
        }
        return (number("Total bytes sent: ") + number("Total bytes received: "), number("Literal data: "))
    }
}

/// (b) One release to many sites at once vs raw CURVE throughput from one ROUTER to as many
/// DEALERs, measured in the same run.
struct FanoutBenchmark {
    let mebibytes: Int
    let sites: Int
    let directory: String

    func run(log: (String) -> Void) throws -> (seconds: Double, rawSeconds: Double, bytesPerSite: Int) {
        let bench = try ReleaseBench(
            dir: "\(directory)/hocvu-bench-fanout", mediaBytes: (mebibytes << 20) / 4, files: 4, maxTransfers: sites)
        defer { bench.hub.stop(); try? FileManager.default.removeItem(atPath: bench.dir) }
        log("publishing a \(mebibytes) MiB release…")
        try bench.publish(version: 1)
        let communes = try AdminUnits.bundled().provinces.flatMap(\.communes).map(\.code)
        let siteList = try (0..<sites).map { try bench.makeSite($0, commune: communes[$0]) }
        let bytesPerSite = try bench.manifest(1).chunks.reduce(0) { $0 + $1.size }
        log("\(sites) sites fetching…")
        let t0 = ContinuousClock.now
        let clients = try siteList.map { s in let c = try bench.client(s); try c.start(); return c }
        for s in siteList { while (try s.store.curriculumVersion() ?? 0) < 1 { usleep(5_000) } }
        let seconds = (ContinuousClock.now - t0).seconds
        log(String(format: "hocvu: %.1f s", seconds))
        clients.forEach { $0.stop() }
        log("raw CURVE: one ROUTER → \(sites) DEALERs, \(bytesPerSite) bytes each in 1 MiB messages…")
        let raw = try rawCurve(bytesPerPeer: bytesPerSite)
        return (seconds, raw, bytesPerSite)
    }

    private func rawCurve(bytesPerPeer: Int) throws -> Double {
        let serverKeys = BoxKeyPair.generate()
        let context = try ZMQContext()
        let zap = try ZAPHandler(context, domain: "bench")  // the hub authenticates too: same handshake cost
        let router = try ZMQSocket(context, .router)
        try router.makeCurveServer(secretKey: serverKeys.secretKey, zapDomain: "bench")
        try router.setRouterMandatory()
        // A window of 8 messages per peer, like the sites' fetch window.
        try router.setHighWaterMarks(send: 8, receive: 1_000)
        let endpoint = try router.bind("tcp://127.0.0.1:*")
        let payload = Data(count: 1 << 20)
        let done = DispatchGroup()
        let t0 = ContinuousClock.now
        for _ in 0..<sites {
            done.enter()
            Thread {
                defer { done.leave() }
                guard let ctx = try? ZMQContext(), let d = try? ZMQSocket(ctx, .dealer) else { return }
                let keys = BoxKeyPair.generate()
                try? d.makeCurveClient(publicKey: keys.publicKey, secretKey: keys.secretKey, serverKey: serverKeys.publicKey)
                try? d.connect(endpoint)
                _ = try? d.send([Data("go".utf8)])
                var got = 0
                while got < bytesPerPeer {
                    _ = try? zmqPoll([d], timeoutMilliseconds: 1_000)
                    while let m = try? d.receive(maxFrames: 2) { got += m.frames.reduce(0) { $0 + $1.count } }
                }
            }.start()
        }
        // Serve each peer as it says go; interleave sends so every peer progresses (like the hub).
        var peers = [Data: Int]()
        var finished = 0
        while finished < sites {
            let readable = try zmqPoll([router, zap.socket], timeoutMilliseconds: 0)
            if readable.sockets[1] { _ = try zap.handlePending { _ in .allow(userID: "bench") } }
            while let m = try router.receive(maxFrames: 3) { peers[m.frames[0]] = 0 }
            var progressed = false
            for (peer, sent) in peers where sent < bytesPerPeer {
                let n = min(payload.count, bytesPerPeer - sent)
                if try router.send([peer, payload.prefix(n)]) {
                    progressed = true
                    peers[peer] = sent + n
                    if sent + n >= bytesPerPeer { finished += 1 }
                }
            }
            if !progressed { usleep(200) }
        }
        done.wait()
        return (ContinuousClock.now - t0).seconds
    }
}
