import Foundation
import Logging
import Merge
import Hummingbird
public import Logging
import Model
public import Release
public import ServiceLifecycle
import Sodium
public import Store
import WebSupport

/// A site's learner portal, operator pages and learning-app API (docs/portal.md): a Hummingbird
/// application, itself a `Service` of the site daemon's group, off unless `[portal]` enables it.
///
/// Learners sign in with the code and PIN their operator set, open the lessons of the installed
/// release targeted at their role and province, and take quizzes graded here (the answer key never
/// reaches the browser). Every result goes through `NodeStore.record`, like an import, so it is
/// signed, synced and merged like every other result.
public struct PortalServer: Sendable {
    public struct Configuration: Sendable {
        /// IPv4 address and port: the commune LAN's address (learners' phones and PCs reach it), or
        /// loopback behind a reverse proxy.
        public var host: String
        public var port: Int
        /// Marks cookies `Secure` (sent over HTTPS only): set when behind an HTTPS reverse proxy.
        public var secureCookies: Bool
        public var lockout = LockoutPolicy()
        /// Largest JSON Lines file an operator may upload.
        public var maxUploadBytes = 16 << 20
        public init(host: String = "127.0.0.1", port: Int, secureCookies: Bool = false) {
            self.host = host
            self.port = port
            self.secureCookies = secureCookies
        }
    }

    /// What the operator's page shows of sync (the daemon fills it from its engine).
    public struct SyncStatus: Sendable, Equatable, Codable {
        public var connected: Bool
        public var lastHeardFromHub: Int64?
        public var unacknowledgedBatches: Int?
        public var installedRelease: UInt64?
        public var fetchingRelease: UInt64?
        public var quarantinedRecords: Int?
        public var problem: String?
        public init(
            connected: Bool, lastHeardFromHub: Int64? = nil, unacknowledgedBatches: Int? = nil, installedRelease: UInt64? = nil,
            fetchingRelease: UInt64? = nil, quarantinedRecords: Int? = nil, problem: String? = nil
        ) {
            self.connected = connected
            self.lastHeardFromHub = lastHeardFromHub
            self.unacknowledgedBatches = unacknowledgedBatches
            self.installedRelease = installedRelease
            self.fetchingRelease = fetchingRelease
            self.quarantinedRecords = quarantinedRecords
            self.problem = problem
        }
    }

    let app: PortalApp
    let configuration: Configuration
    let logger: Logger

    /// - Parameters:
    ///   - sync: the engine's sync status now (nil when not running, e.g. in tests).
    ///   - now: the clock (ms since the epoch) for sessions; tests move it by hand.
    public init(
        store: NodeStore, chunks: ChunkStore, configuration: Configuration, logger: Logger,
        sync: @escaping @Sendable () -> SyncStatus? = { nil }, now: @escaping @Sendable () -> Int64 = NodeStore.systemNow
    ) throws {
        try store.preparePortal()
        self.configuration = configuration
        self.logger = logger
        app = PortalApp(store: store, chunks: chunks, configuration: configuration, sync: sync, now: now, logger: logger)
    }

    /// The application as a service; `onRunning` is called once it listens.
    public func service(onRunning: @escaping @Sendable () async -> Void = {}) -> any Service {
        let router = Router()
        app.register(on: router)
        return Web.application(
            name: "Portal", router: router, host: configuration.host, port: configuration.port, logger: logger, onRunning: onRunning)
    }
}

/// The request handlers. Every value from a request is checked before use; a bad one gets a 4xx.
final class PortalApp: Sendable {
    let store: NodeStore
    let curriculum: CurriculumCache
    let media: MediaResponder
    let sessions = SessionStore()
    /// Two Argon2id checks at once on a 2-core commune PC: the rest of the portal keeps serving.
    let gate = SignInGate(maxConcurrent: 2)
    let configuration: PortalServer.Configuration
    let sync: @Sendable () -> PortalServer.SyncStatus?
    let now: @Sendable () -> Int64
    let logger: Logger

    static let sessionCookie = "hocvu_portal"
    static let csrfCookie = "hocvu_portal_csrf"

    init(
        store: NodeStore, chunks: ChunkStore, configuration: PortalServer.Configuration, sync: @escaping @Sendable () -> PortalServer.SyncStatus?,
        now: @escaping @Sendable () -> Int64, logger: Logger
    ) {
        self.store = store
        curriculum = CurriculumCache(store: store)
        media = MediaResponder(chunks: chunks)
        self.configuration = configuration
        self.sync = sync
        self.now = now
        self.logger = logger
    }

    func register(on router: Router<BasicRequestContext>) {
        router.get("/") { req, _ in
            switch try self.user(req) {
            case .learner: Web.redirect("/learn")
            case .operator: Web.redirect("/operator")
            case nil: Web.redirect("/sign-in")
            }
        }
        router.get("/sign-in") { _, _ in self.signInForm(.learner, status: .ok, error: nil) }
        router.post("/sign-in") { req, _ in try await self.signIn(req, .learner) }
        router.get("/operator/sign-in") { _, _ in self.signInForm(.operator, status: .ok, error: nil) }
        router.post("/operator/sign-in") { req, _ in try await self.signIn(req, .operator) }
        router.post("/sign-out") { req, _ in try await self.signOut(req) }
        registerLearnerRoutes(on: router)
        registerOperatorRoutes(on: router)
        registerAPIRoutes(on: router)
    }

    // MARK: Who is asking

    /// A signed-in user, as the database says now (a removed operator or a reset PIN ends nothing
    /// here, but a removed account does).
    enum User {
        case learner(PortalLearner, csrf: String, token: String)
        case `operator`(name: String, csrf: String, token: String)

        var csrf: String {
            switch self {
            case .learner(_, let c, _), .operator(_, let c, _): c
            }
        }
        var token: String {
            switch self {
            case .learner(_, _, let t), .operator(_, _, let t): t
            }
        }
    }

    func user(_ req: Request) throws -> User? {
        guard let token = Web.cookie(req, Self.sessionCookie), let s = sessions.session(token: token, now: now()) else { return nil }
        // "L:code:tag" or "O:name:tag", the tag naming the secret signed in with: a reset PIN or
        // password, or an account removed and made again, ends the sessions opened before.
        let parts = s.user.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if parts.count == 3, parts[0] == "L", let learner = try store.portalLearner(code: parts[1]),
           let hash = try store.portalAccount(.learner, named: parts[1])?.secretHash, Self.tag(hash) == parts[2]
        {
            return .learner(learner, csrf: s.csrf, token: token)
        }
        if parts.count == 3, parts[0] == "O", let hash = try store.portalAccount(.operator, named: parts[1])?.secretHash, Self.tag(hash) == parts[2] {
            return .operator(name: parts[1], csrf: s.csrf, token: token)
        }
        sessions.remove(token: token)  // the account is gone since sign-in
        return nil
    }

    // MARK: Sign-in

    func signInForm(_ kind: PortalAccountKind, status: HTTPResponse.Status, error: String?) -> Response {
        // Double-submit CSRF token for the sign-in form (there is no session yet).
        let csrf = SessionStore.token()
        var r = Web.html(status, PortalPages.signIn(kind, csrf: csrf, error: error))
        r.headers[values: .setCookie].append(Web.setCookie(Self.csrfCookie, csrf, maxAge: 3_600, secure: configuration.secureCookies))
        return r
    }

    func signIn(_ req: Request, _ kind: PortalAccountKind) async throws -> Response {
        guard let form = try await Web.form(req) else { return Web.text(.badRequest, "expected a form (application/x-www-form-urlencoded, at most 8 KiB)") }
        guard Web.tokensMatch(form["csrf"], Web.cookie(req, Self.csrfCookie)) else {
            return signInForm(kind, status: .forbidden, error: "Phiên biểu mẫu đã hết hạn. Vui lòng thử lại.")
        }
        let refused = kind == .learner
            ? "Sai mã học viên hoặc mã PIN, hoặc tài khoản đang tạm khóa. Hãy thử lại sau hoặc hỏi cán bộ phụ trách."
            : "Sai tên đăng nhập hoặc mật khẩu, hoặc tài khoản đang tạm khóa."
        let name = (form["name"] ?? "").trimmingCharacters(in: .whitespaces), secret = form["secret"] ?? ""
        guard secret.utf8.count <= PasswordHash.maxPasswordBytes else { return signInForm(kind, status: .unauthorized, error: refused) }
        let outcome = try await gate.withSlot { () async throws -> Response in
            guard let found = try store.portalAccount(kind, named: name), let hash = found.secretHash else {
                await gate.decoy(secret)
                logger.notice("Portal sign-in refused: unknown name", metadata: ["kind": "\(kind.rawValue)"])
                return signInForm(kind, status: .unauthorized, error: refused)
            }
            if found.account.isLocked(now: now()) {
                await gate.decoy(secret)  // same time as a wrong secret
                logger.notice("Portal sign-in refused: account locked", metadata: ["kind": "\(kind.rawValue)"])
                return signInForm(kind, status: .unauthorized, error: refused)
            }
            guard await gate.verify(secret, against: hash) else {
                let lockedNow = try store.recordPortalSignInFailure(kind, name: name, policy: configuration.lockout)
                logger.notice(lockedNow ? "Portal account locked after repeated wrong secrets" : "Portal sign-in refused: wrong secret", metadata: ["kind": "\(kind.rawValue)"])
                return signInForm(kind, status: .unauthorized, error: refused)
            }
            try store.recordPortalSignInSuccess(kind, name: name)
            let (token, _) = sessions.create(user: "\(kind == .learner ? "L" : "O"):\(name):\(Self.tag(hash))", now: now())
            var r = Web.redirect(kind == .learner ? "/learn" : "/operator")
            r.headers[values: .setCookie].append(Web.setCookie(Self.sessionCookie, token, maxAge: nil, secure: configuration.secureCookies))
            r.headers[values: .setCookie].append(Web.setCookie(Self.csrfCookie, "", maxAge: 0, secure: configuration.secureCookies))
            return r
        }
        return outcome ?? Web.text(.serviceUnavailable, "too many sign-ins at once; try again in a moment")
    }

    /// A short name for a secret's hash (never the hash itself in memory beside the session).
    static func tag(_ secretHash: String) -> String { Blake2b.hash(Data(secretHash.utf8), outputLength: 16).hexString }

    func signOut(_ req: Request) async throws -> Response {
        guard let u = try user(req) else { return Web.redirect("/sign-in") }
        guard let form = try await Web.form(req), Web.tokensMatch(form["csrf"], u.csrf) else { return badForm() }
        sessions.remove(token: u.token)
        var r = Web.redirect("/sign-in")
        r.headers[values: .setCookie].append(Web.setCookie(Self.sessionCookie, "", maxAge: 0, secure: configuration.secureCookies))
        return r
    }

    func badForm() -> Response {
        Web.html(.forbidden, PortalPages.message(title: "Yêu cầu không hợp lệ", text: "Biểu mẫu đã hết hạn hoặc không mang mã bảo vệ đúng. Hãy tải lại trang và thử lại."))
    }

    /// A page for a signed-in user; redirected to sign-in otherwise.
    static let pagePolicy =
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; media-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    static func page(_ status: HTTPResponse.Status, _ html: String) -> Response { Web.html(status, html, policy: pagePolicy) }
    static func page(_ html: String) -> Response { page(.ok, html) }

    /// The id under which a page's write is journaled: the action and a hash of what it is about.
    static func writeID(_ action: String, _ subject: String) -> String {
        "\(action)-" + Blake2b.hash(Data(subject.utf8), outputLength: 16).hexString
    }

    /// An id from a URL or form: 1 to 64 of the characters release ids use; nil otherwise.
    static func id(_ s: String?) -> String? {
        guard let s, Manifest.isPlainID(s) else { return nil }
        return s
    }
}
