import Dashboard
import Foundation
import Logging
import Merge
import Model
import ServiceLifecycle
import Sodium
import Store
import Synchronization
import TestSupport

/// A clock the test moves by hand (ms since the epoch), shared by the store and the dashboard.
final class ManualClock: Sendable {
    private let ms = Mutex<Int64>(1_767_225_600_000)  // 2026-01-01T00:00:00Z
    var now: Int64 { ms.withLock { $0 } }
    func advance(_ delta: Int64) { ms.withLock { $0 += delta } }
}

/// A hub database on a real SQLite file, seeded with learners in two provinces, and its dashboard
/// listening on an ephemeral port of 127.0.0.1.
final class DashboardFixture: @unchecked Sendable {  // fields are set once in init, then only read
    let dir: TemporaryDirectory
    let clock: ManualClock
    let store: NodeStore
    let client: HTTPClient
    private let group: ServiceGroup
    private let running: Task<Void, any Error>

    /// Hà Nội (province 1): communes 70 and 73. Another province: ``otherProvince``, commune ``otherCommune``.
    static let homeProvince = 1
    static let homeCommune = 70
    static let secondCommune = 73
    let otherProvince: Int
    let otherCommune: Int

    static let password = "mật khẩu đủ dài 123"

    init(users: [(String, DashboardScope)] = [("quocgia", .national)]) async throws {
        dir = try TemporaryDirectory(prefix: "hocvu-dashboard")
        let clock = ManualClock()
        self.clock = clock
        let store = try NodeStore(path: dir.file("hub.sqlite"), identity: .generate(), now: { clock.now })
        self.store = store
        try store.installCurriculum(SampleCurriculum.make())
        let units = try AdminUnits.bundled()
        let other = try requireValue(units.provinces.first { $0.code != Self.homeProvince })
        let otherCommune = try requireValue(other.communes.first).code
        self.otherProvince = other.code
        self.otherCommune = otherCommune

        // Learners: two in commune 70 (one certified, one with a name that needs CSV quoting), one
        // in 73, one in the other province.
        let a = try Self.register(store, 1, commune: Self.homeCommune, name: "Nguyễn Văn An")
        _ = try Self.register(store, 2, commune: Self.homeCommune, name: "Trần \"Bé\", Thị =Hoa")
        _ = try Self.register(store, 3, commune: Self.secondCommune, name: "Lê Văn Cường")
        _ = try Self.register(store, 4, commune: otherCommune, name: "Phạm Thị Dung")
        let t = clock.now
        try store.record([
            .enroll(learnerID: a, courseID: "ksn-101"),
            .progress(learnerID: a, lessonID: "ksn-101-l1", percent: 100, at: t),
            .progress(learnerID: a, lessonID: "ksn-101-l2", percent: 100, at: t),
            .attempt(learnerID: a, quizID: "ksn-101-quiz", answers: [0, 0, 0, 0, 0], score: 9, maxScore: 10, startedAt: t - 1_000, finishedAt: t),
            .issueCertificate(learnerID: a, courseID: "ksn-101"),
        ])
        // The roster: learners 1–4 and person 5 (commune 70, not registered as a learner).
        let roster = """
            national_id,full_name,role,unit,commune_code
            001200000001,Nguyễn Văn An,civil_servant,UBND,\(Self.homeCommune)
            001200000002,"Trần ""Bé"", Thị =Hoa",commune_council_delegate,HĐND xã,\(Self.homeCommune)
            001200000003,Lê Văn Cường,civil_servant,UBND,\(Self.secondCommune)
            001200000004,Phạm Thị Dung,civil_servant,UBND,\(otherCommune)
            001200000005,Hoàng Văn Em,civil_servant,UBND,\(Self.homeCommune)

            """
        let parsed = RosterImport.parse(roster, format: .csv)
        guard parsed.errors.isEmpty, try store.importRoster(parsed.rows).added == 5 else {
            throw HTTPClient.Failure(description: "roster import: \(parsed.errors)")
        }
        for (name, scope) in users {
            try store.addDashboardUser(name: name, passwordHash: try requireValue(PasswordHash.hash(Self.password)), scope: scope)
        }

        let port = try HTTPClient.freePort()
        client = HTTPClient(port: port)
        var logger = Logger(label: "dashboard-test")
        logger.logLevel = .warning
        let server = try DashboardServer(store: store, configuration: .init(host: "127.0.0.1", port: port), logger: logger, now: { clock.now })
        let group = ServiceGroup(services: [try server.service()], logger: logger)
        self.group = group
        running = Task { try await group.run() }
        // Listening once a connection is accepted (at most 10 s).
        for _ in 0..<200 {
            if (try? await client.get("/sign-in")) != nil { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw HTTPClient.Failure(description: "the dashboard did not start listening on \(port)")
    }

    static func register(_ store: NodeStore, _ i: Int, commune: Int, name: String) throws -> String {
        let out = try store.record([
            .registerLearner(nationalID: String(format: "0012%08d", i), fullName: name, role: .civilServant, unit: "UBND", homeCommune: commune)
        ])
        guard case .learner(let id) = out[0] else { throw HTTPClient.Failure(description: "no learner id") }
        return id
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await running.value
        dir.remove()
    }

    /// Signs in as `name`; returns the session cookie.
    func signIn(_ name: String, password: String = DashboardFixture.password) async throws -> String {
        let form = try await client.get("/sign-in")
        let csrf = try requireValue(form.cookie("hocvu_csrf"))
        let r = try await client.post("/sign-in", form: [("csrf", csrf), ("name", name), ("password", password)], cookies: ["hocvu_csrf": csrf])
        guard r.status == 303, let session = r.cookie("hocvu_session"), !session.isEmpty else {
            throw HTTPClient.Failure(description: "sign-in as \(name) gave \(r.status)")
        }
        return session
    }

    /// The CSRF token a signed-in page carries in its sign-out form.
    static func csrf(in page: String) -> String? {
        guard let r = page.range(of: "name=\"csrf\" value=\"") else { return nil }
        return String(page[r.upperBound...].prefix(64))
    }
}

/// `#require` for plain values outside a test function's body.
func requireValue<T>(_ value: T?, _ what: String = "value") throws -> T {
    guard let value else { throw HTTPClient.Failure(description: "missing \(what)") }
    return value
}
