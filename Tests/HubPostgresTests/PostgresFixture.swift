import Foundation
@testable import HubPostgres
import Logging
import Merge
import Model
import PostgresNIO
import Sodium
import Store
import TestSupport
import Testing

/// The cluster the tests use, from `HOCVU_TEST_POSTGRES` ("host=DIR port=N user=U", as
/// ops/pg-test-cluster.sh prints it; ops/test.sh starts one and sets it). Without it the tests of
/// this target are skipped, and say so.
enum TestPostgres {
    static let settings: [String: String]? = {
        guard let raw = ProcessInfo.processInfo.environment["HOCVU_TEST_POSTGRES"], !raw.isEmpty else { return nil }
        var out = [String: String]()
        for part in raw.split(separator: " ") {
            let kv = part.split(separator: "=", maxSplits: 1)
            if kv.count == 2 { out[String(kv[0])] = String(kv[1]) }
        }
        return out
    }()

    static var available: Bool { settings != nil }
    static var host: String { settings?["host"] ?? "/var/run/postgresql" }
    static var port: Int { Int(settings?["port"] ?? "") ?? 5432 }
    static var user: String { settings?["user"] ?? "postgres" }
    /// The directory ops/pg-test-cluster.sh made (its socket directory), for a restart.
    static var clusterDirectory: String? { host.hasPrefix("/") ? host : nil }

    static func log(database: String, hub: String = "test-hub", timeout: Double = 10) -> PostgresHubLog {
        PostgresHubLog(
            .init(host: host, port: port, database: database, user: user, tls: "disable", timeoutSeconds: timeout, hubName: hub),
            logger: quietLogger)
    }

    /// A new, empty database of its own (so tests never see each other's rows), migrated unless asked not to.
    static func freshDatabase(migrated: Bool = true) throws -> String {
        let name = "hocvu_t_\(UInt32.random(in: 0...UInt32.max))_\(UInt32.random(in: 0...UInt32.max))"
        let admin = log(database: "postgres")
        defer { admin.close() }
        try admin.blocking("creating a test database") { [client = admin.client] in
            try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"))
        }
        if migrated {
            let l = log(database: name)
            defer { l.close() }
            try l.migrate()
        }
        return name
    }

    /// Runs SQL the log has no API for (test set-up and inspection only).
    static func execute(_ sql: String, database: String) throws {
        let l = log(database: database)
        defer { l.close() }
        try l.blocking("test SQL") { [client = l.client] in try await client.query(PostgresQuery(unsafeSQL: sql)) }
    }
}

/// Official commune codes (the store refuses others), from several provinces.
let testCommunes = [70, 1273, 2269, 3325, 3637, 3646, 73, 4, 8, 25]

let quietLogger: Logger = {
    var l = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    l.logLevel = .critical
    return l
}()

func eventually(_ seconds: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if try condition() { return true }
        usleep(20_000)
    }
    return try condition()
}

extension NodeStore {
    /// Registers learner `i` of `commune`, enrolls them, completes a lesson and takes a quiz.
    func recordResults(commune: Int, first: Int, count n: Int) throws {
        let now = NodeStore.systemNow()
        for i in first..<(first + n) {
            let out = try record([
                .registerLearner(
                    nationalID: String(format: "0019%08d", i), fullName: "Học viên \(i)", role: .civilServant, unit: "UBND",
                    homeCommune: commune)
            ])
            guard case .learner(let id) = out[0] else { fatalError("unexpected outcome") }
            try record([
                .enroll(learnerID: id, courseID: "ksn-101"),
                .progress(learnerID: id, lessonID: "ksn-101-l1", percent: 100, at: now),
                .attempt(
                    learnerID: id, quizID: "ksn-101-quiz", answers: [0, 1, 2, 3, 0], score: 8, maxScore: 10,
                    startedAt: now - 60_000, finishedAt: now),
            ])
        }
    }
}

/// A site's store with its own key in `dir`, with the sample curriculum.
func siteStore(_ dir: TemporaryDirectory, _ name: String, key: SigningKeyPair = .generate()) throws -> NodeStore {
    let s = try NodeStore(path: dir.file("\(name).sqlite"), identity: key)
    try s.installCurriculum(SampleCurriculum.make())
    return s
}
