import Foundation
import Logging
import Merge
import Model
import Portal
import Release
import ServiceLifecycle
import Sodium
import Store
import Synchronization
import TestSupport

/// A site database on a real SQLite file with a real signed release installed (its chunk files on
/// disk), two learners with PINs, an operator and an app token, and the portal listening on an
/// ephemeral port of 127.0.0.1.
final class PortalFixture: @unchecked Sendable {  // fields are set once in init, then only read
    let dir: TemporaryDirectory
    let store: NodeStore
    let client: HTTPClient
    let chunks: ChunkStore
    let manifest: Manifest
    /// Civil servant in commune 70 (offered ksn-101 and attt-101, not the deputies' ai-qh).
    let alice: (code: String, id: String)
    /// Another learner of commune 70.
    let bob: (code: String, id: String)
    let appToken: String
    private let group: ServiceGroup
    private let running: Task<Void, any Error>

    static let pin = "135790"
    static let operatorPassword = "mật khẩu cán bộ 2026"
    static let commune = 70
    /// The right answers of the sample quiz ksn-101-quiz (SampleCurriculum: question n's answer is n % 4).
    static let rightAnswers = [1, 2, 3, 0, 1]

    init(mediaBytes: Int = 3 << 20, lockout: LockoutPolicy = LockoutPolicy()) async throws {
        dir = try TemporaryDirectory(prefix: "hocvu-portal")
        let store = try NodeStore(path: dir.file("site.sqlite"), identity: .generate())
        self.store = store
        let fixture = try ReleaseFixture(root: dir.file("release"), mediaBytes: mediaBytes)
        let bundle = try fixture.build(version: 1)
        let bytes = try bundle.manifestBytes()
        manifest = try Manifest.decode(bytes)
        try store.installRelease(manifest.curriculum, manifest: bytes, signatures: Data("[]".utf8))
        chunks = try bundle.chunkStore()

        func learner(_ n: Int, _ name: String) throws -> (String, String) {
            let out = try store.record([
                .registerLearner(nationalID: String(format: "0012700000%02d", n), fullName: name, role: .civilServant, unit: "UBND", homeCommune: Self.commune)
            ])
            guard case .learner(let id) = out.first else { throw HTTPClient.Failure(description: "no learner id") }
            let code = try store.setLearnerPIN(learnerID: id, pinHash: try Self.hash(Self.pin))
            return (code, id)
        }
        alice = try learner(1, "Nguyễn Thị Alice")
        bob = try learner(2, "Trần Văn Bob")
        try store.addPortalOperator(name: "canbo", passwordHash: try Self.hash(Self.operatorPassword))
        appToken = try store.addPortalApp(name: "app-hoc")

        let port = try HTTPClient.freePort()
        client = HTTPClient(port: port)
        var logger = Logger(label: "portal-test")
        logger.logLevel = .warning
        var configuration = PortalServer.Configuration(host: "127.0.0.1", port: port)
        configuration.lockout = lockout
        let server = try PortalServer(
            store: store, chunks: chunks, configuration: configuration, logger: logger,
            sync: { .init(connected: true, lastHeardFromHub: 1_767_225_600_000, unacknowledgedBatches: 3, installedRelease: 1) })
        let group = ServiceGroup(services: [server.service()], logger: logger)
        self.group = group
        running = Task { try await group.run() }
        for _ in 0..<200 {
            if (try? await client.get("/sign-in")) != nil { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw HTTPClient.Failure(description: "the portal did not start listening on \(port)")
    }

    static func hash(_ secret: String) throws -> String {
        guard let h = PasswordHash.hash(secret) else { throw HTTPClient.Failure(description: "hash") }
        return h
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await running.value
        dir.remove()
    }

    /// Signs in through the form; returns the session cookie.
    func signIn(code: String, secret: String = PortalFixture.pin, operator isOperator: Bool = false) async throws -> String? {
        let path = isOperator ? "/operator/sign-in" : "/sign-in"
        let form = try await client.get(path)
        guard let csrf = Self.csrf(in: form.text), let cookie = form.cookie("hocvu_portal_csrf") else { return nil }
        let r = try await client.post(path, form: [("csrf", csrf), ("name", code), ("secret", secret)], cookies: ["hocvu_portal_csrf": cookie])
        return r.status == 303 ? r.cookie("hocvu_portal") : nil
    }

    static func csrf(in page: String) -> String? {
        guard let r = page.range(of: "name=\"csrf\" value=\"") else { return nil }
        return String(page[r.upperBound...].prefix(64))
    }

    /// The hidden field `name`'s value in a page.
    static func hidden(_ name: String, in page: String) -> String? {
        guard let r = page.range(of: "name=\"\(name)\" value=\"") else { return nil }
        return String(page[r.upperBound...].prefix { $0 != "\"" })
    }

    func api(_ method: String, _ path: String, json: String? = nil, token: String? = nil, headers: [String: String] = [:]) async throws -> HTTPClient.Reply {
        var h = headers
        if let t = token ?? Optional(appToken), !t.isEmpty { h["Authorization"] = "Bearer \(t)" }
        if json != nil, h["Content-Type"] == nil { h["Content-Type"] = "application/json" }
        return try await client.send(method, path, headers: h, body: json.map { Data($0.utf8) })
    }

    /// The attempts this site has recorded for a learner (from its own tables).
    func attempts(_ learnerID: String) throws -> Int { try store.learnerProgress(learnerID).attempts.values.reduce(0, +) }

    /// The file of lesson ksn-101-l1 at index 1 (the generated video), reassembled.
    func videoBytes() throws -> Data {
        let f = try requireValue(manifest.files.first { $0.path == "media/video.bin" })
        return try chunks.assemble(f)
    }
}

func requireValue<T>(_ value: T?, _ what: String = "value") throws -> T {
    guard let value else { throw HTTPClient.Failure(description: "missing \(what)") }
    return value
}
