import Foundation
import Hummingbird
public import Logging
public import ServiceLifecycle
import Sodium
public import Store
import Synchronization

/// The hub's web dashboard: nation → province → commune pages in Vietnamese, their CSV and JSON
/// downloads, sign-in with lockout, sessions, CSRF tokens, per-province access and an audit trail of
/// who opened pages with personal data. A Hummingbird application, itself a `Service` of the hub
/// daemon's group (docs/operations.md, "Dashboard").
///
/// Routes: `GET /` (to the viewer's page), `GET|POST /sign-in`, `POST /sign-out`, `GET /national`,
/// `GET /province/CODE`, `GET /commune/CODE`; each page takes `?format=csv|json`. Anything else is 404.
public struct DashboardServer: Sendable {
    public struct Configuration: Sendable {
        /// Loopback IPv4 address and port to listen on (HTTPS is a reverse proxy's job).
        public var host: String
        public var port: Int
        /// Marks cookies `Secure` (sent over HTTPS only): set when behind an HTTPS reverse proxy.
        public var secureCookies: Bool
        public var lockout = LockoutPolicy()
        public init(host: String = "127.0.0.1", port: Int, secureCookies: Bool = false) {
            self.host = host
            self.port = port
            self.secureCookies = secureCookies
        }
    }

    let app: DashboardApp
    let configuration: Configuration
    let logger: Logger

    /// - Parameter now: the clock (ms since the epoch) for sessions; tests move it by hand.
    public init(
        store: NodeStore, configuration: Configuration, logger: Logger,
        now: @escaping @Sendable () -> Int64 = NodeStore.systemNow
    ) throws {
        self.configuration = configuration
        self.logger = logger
        app = DashboardApp(
            store: store, pages: try PageBuilder(store: store), sessions: SessionStore(), lockout: configuration.lockout,
            secureCookies: configuration.secureCookies, now: now, logger: logger)
    }

    /// The application as a service; `onRunning` is called once it listens.
    public func service(onRunning: @escaping @Sendable () async -> Void = {}) throws -> any Service {
        let router = Router()
        app.register(on: router)
        let address = "http://\(configuration.host):\(configuration.port)/"
        let logger = logger
        return Application(
            router: router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            onServerRunning: { _ in
                logger.info("Dashboard listening", metadata: ["url": "\(address)"])
                await onRunning()
            },
            logger: logger)
    }
}

/// The request handlers. Every value from a request is checked before use; a bad one gets a 4xx.
final class DashboardApp: Sendable {
    let store: NodeStore
    let pages: PageBuilder
    /// Rendered national and province pages for the current report (``RenderCache``).
    let renders = RenderCache()
    let sessions: SessionStore
    let lockout: LockoutPolicy
    let secureCookies: Bool
    let now: @Sendable () -> Int64
    let logger: Logger
    /// Argon2id verifications in flight: each takes ~64 MiB for ~0.2 s, so a flood of sign-ins is
    /// answered 503 beyond this many instead of exhausting memory.
    let verifying = Atomic<Int>(0)
    static let maxConcurrentVerifications = 4
    /// Verified against for unknown user names, so "no such user" costs the same time as a wrong
    /// password and does not tell which names exist.
    let decoyHash: String

    static let sessionCookie = "hocvu_session"
    static let csrfCookie = "hocvu_csrf"
    static let maxFormBytes = 8 * 1_024

    init(
        store: NodeStore, pages: PageBuilder, sessions: SessionStore, lockout: LockoutPolicy, secureCookies: Bool,
        now: @escaping @Sendable () -> Int64, logger: Logger
    ) {
        self.store = store
        self.pages = pages
        self.sessions = sessions
        self.lockout = lockout
        self.secureCookies = secureCookies
        self.now = now
        self.logger = logger
        decoyHash = PasswordHash.hash(SessionStore.token()) ?? ""
    }

    /// A signed-in viewer, as the database says now.
    struct Viewer {
        let name: String
        let scope: DashboardScope
        let csrf: String
        let token: String
    }

    func register(on router: Router<BasicRequestContext>) {
        router.get("/") { req, _ in
            guard let v = try self.viewer(req) else { return Self.redirect("/sign-in") }
            switch v.scope {
            case .national: return Self.redirect("/national")
            case .province(let p): return Self.redirect("/province/\(p)")
            }
        }
        router.get("/sign-in") { req, _ in self.signInForm(req, status: .ok, error: nil) }
        router.post("/sign-in") { req, _ in try await self.signIn(req) }
        router.post("/sign-out") { req, _ in try await self.signOut(req) }
        router.get("/national") { req, _ in
            try self.page(req, allowed: { $0 == .national }) { try self.pages.nation(try self.pages.report()) }
        }
        router.get("/province/:code") { req, ctx in
            guard let code = Self.code(ctx.parameters.get("code")) else { return Self.notFound() }
            return try self.page(req, allowed: { $0.covers(province: code) }) { try self.pages.province(code, try self.pages.report()) }
        }
        router.get("/commune/:code") { req, ctx in
            guard let code = Self.code(ctx.parameters.get("code")), let province = self.pages.province(ofCommune: code) else {
                return Self.notFound()
            }
            return try self.page(req, allowed: { $0.covers(province: province) }, personal: "commune:\(code)") {
                try self.pages.commune(code, try self.pages.report())
            }
        }
    }

    enum Format: String { case html, csv, json }

    /// Serves a page in the format asked for, to a signed-in viewer whose scope is `allowed` (else
    /// 403, decided before anything is read). A page with personal data (`personal` names it) is
    /// written to the audit trail before it is built; if that write fails, nothing is shown.
    /// `build` returns nil for a unit that does not exist (404).
    func page(
        _ req: Request, allowed: (DashboardScope) -> Bool, personal: String? = nil, build: () throws -> Page?
    ) throws -> Response {
        let formatParam = req.uri.queryParameters["format"].map(String.init) ?? "html"
        guard let format = Format(rawValue: formatParam) else {
            return Self.text(.badRequest, "format must be html, csv or json")
        }
        guard let v = try viewer(req) else {
            return format == .html ? Self.redirect("/sign-in") : Self.text(.unauthorized, "sign in first: /sign-in")
        }
        guard allowed(v.scope) else {
            logger.notice("Dashboard refused a page outside the viewer's scope", metadata: ["user": "\(v.name)", "path": "\(req.uri.path)"])
            return forbidden(v)
        }
        if let personal {
            try store.appendDashboardAudit(user: v.name, action: .viewRoster, target: "\(personal)/\(format.rawValue)")
        }
        guard let page = try build() else { return Self.notFound() }
        switch format {
        case .html where personal == nil:
            // The same figures for every viewer until the report is recomputed: render once with
            // stand-ins for the viewer's name and sign-out token, fill those in per request.
            let key = RenderCache.Key(path: req.uri.path, generatedAt: page.generatedAt, canSeeNation: v.scope == .national)
            let template = renders.template(for: key) {
                HTMLPages.unitPage(page, user: RenderCache.userMark, csrf: RenderCache.csrfMark, canSeeNation: key.canSeeNation)
            }
            return Self.html(.ok, template.fill(user: HTMLPages.escaped(v.name), csrf: v.csrf))
        case .html:
            return Self.html(.ok, HTMLPages.unitPage(page, user: v.name, csrf: v.csrf, canSeeNation: v.scope == .national))
        case .csv:
            return Self.download(Downloads.csv(page), type: "text/csv; charset=utf-8", name: Self.fileName(page, "csv"))
        case .json:
            return Self.download(Downloads.json(page), type: "application/json; charset=utf-8", name: Self.fileName(page, "json"))
        }
    }

    func forbidden(_ v: Viewer) -> Response {
        Self.html(.forbidden, HTMLPages.message(title: "Không có quyền xem", text: "Tài khoản này không được xem trang này.", user: v.name, csrf: v.csrf))
    }

    static func fileName(_ page: Page, _ ext: String) -> String {
        switch page.level {
        case .nation: "toan-quoc.\(ext)"
        case .province: "tinh-\(page.code).\(ext)"
        case .commune: "xa-\(page.code).\(ext)"
        }
    }

    /// A unit code from a URL: 1 to 6 digits, nothing else.
    static func code(_ s: String?) -> Int? {
        guard let s, (1...6).contains(s.utf8.count), s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(s)
    }

    // MARK: Sessions and sign-in

    func viewer(_ req: Request) throws -> Viewer? {
        guard let token = Self.cookie(req, Self.sessionCookie), let s = sessions.session(token: token, now: now()) else { return nil }
        guard let account = try store.dashboardUser(named: s.user) else {
            sessions.remove(token: token)  // the account was removed since sign-in
            return nil
        }
        return Viewer(name: s.user, scope: account.user.scope, csrf: s.csrf, token: token)
    }

    func signInForm(_ req: Request, status: HTTPResponse.Status, error: String?) -> Response {
        // Double-submit CSRF token for the sign-in form (there is no session yet): a cookie and a
        // hidden field that must match; SameSite=Strict keeps other sites' forms from sending it.
        let csrf = SessionStore.token()
        var r = Self.html(status, HTMLPages.signIn(csrf: csrf, error: error))
        r.headers[values: .setCookie].append(cookie(Self.csrfCookie, csrf, maxAge: 3_600))
        return r
    }

    func signIn(_ req: Request) async throws -> Response {
        guard let form = try await Self.form(req) else { return Self.text(.badRequest, "expected a form (application/x-www-form-urlencoded, at most 8 KiB)") }
        guard let sent = form["csrf"], let expected = Self.cookie(req, Self.csrfCookie),
              SessionStore.isTokenShaped(sent), Sodium.constantTimeEquals(Data(sent.utf8), Data(expected.utf8))
        else {
            return signInForm(req, status: .forbidden, error: "Phiên biểu mẫu đã hết hạn hoặc không hợp lệ. Vui lòng đăng nhập lại.")
        }
        let refused = "Sai tên đăng nhập hoặc mật khẩu, hoặc tài khoản đang tạm khóa. Vui lòng thử lại sau."
        let name = form["name"] ?? "", password = form["password"] ?? ""
        guard password.utf8.count <= PasswordHash.maxPasswordBytes else { return signInForm(req, status: .unauthorized, error: refused) }
        guard verifying.add(1, ordering: .relaxed).newValue <= Self.maxConcurrentVerifications else {
            verifying.subtract(1, ordering: .relaxed)
            return Self.text(.serviceUnavailable, "too many sign-ins at once; try again in a moment")
        }
        defer { verifying.subtract(1, ordering: .relaxed) }

        guard let found = try store.dashboardUser(named: name) else {
            _ = PasswordHash.verify(password, against: decoyHash)
            try store.appendDashboardAudit(user: "-", action: .signInRefused, target: "unknown name")
            logger.notice("Dashboard sign-in refused: unknown name")
            return signInForm(req, status: .unauthorized, error: refused)
        }
        if lockout.isLocked(found.user, now: now()) {
            _ = PasswordHash.verify(password, against: decoyHash)  // same time as a wrong password
            try store.appendDashboardAudit(user: name, action: .signInRefused, target: "locked")
            logger.notice("Dashboard sign-in refused: account locked", metadata: ["user": "\(name)"])
            return signInForm(req, status: .unauthorized, error: refused)
        }
        guard PasswordHash.verify(password, against: found.passwordHash) else {
            let lockedNow = try store.recordDashboardSignInFailure(name: name, policy: lockout)
            try store.appendDashboardAudit(user: name, action: lockedNow ? .locked : .signInRefused, target: "wrong password")
            logger.notice(lockedNow ? "Dashboard account locked after repeated wrong passwords" : "Dashboard sign-in refused: wrong password", metadata: ["user": "\(name)"])
            return signInForm(req, status: .unauthorized, error: refused)
        }
        try store.recordDashboardSignInSuccess(name: name)
        try store.appendDashboardAudit(user: name, action: .signIn)
        let (token, _) = sessions.create(user: name, now: now())
        logger.info("Dashboard sign-in", metadata: ["user": "\(name)"])
        var r = Self.redirect("/")
        r.headers[values: .setCookie].append(cookie(Self.sessionCookie, token, maxAge: nil))
        r.headers[values: .setCookie].append(cookie(Self.csrfCookie, "", maxAge: 0))
        return r
    }

    func signOut(_ req: Request) async throws -> Response {
        guard let v = try viewer(req) else { return Self.redirect("/sign-in") }
        guard let form = try await Self.form(req), let sent = form["csrf"],
              Sodium.constantTimeEquals(Data(sent.utf8), Data(v.csrf.utf8))
        else {
            return Self.html(.forbidden, HTMLPages.message(title: "Yêu cầu không hợp lệ", text: "Biểu mẫu không mang mã bảo vệ đúng (CSRF).", user: v.name, csrf: v.csrf))
        }
        sessions.remove(token: v.token)
        try store.appendDashboardAudit(user: v.name, action: .signOut)
        var r = Self.redirect("/sign-in")
        r.headers[values: .setCookie].append(cookie(Self.sessionCookie, "", maxAge: 0))
        return r
    }

    /// `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/, Secure when served over HTTPS.
    func cookie(_ name: String, _ value: String, maxAge: Int?) -> String {
        var c = "\(name)=\(value); Path=/; HttpOnly; SameSite=Strict"
        if let maxAge { c += "; Max-Age=\(maxAge)" }
        if secureCookies { c += "; Secure" }
        return c
    }

    // MARK: Requests and responses

    static func cookie(_ req: Request, _ name: String) -> String? {
        for header in req.headers[values: .cookie] {
            for part in header.split(separator: ";") {
                let kv = part.trimmingCharacters(in: .whitespaces)
                guard let eq = kv.firstIndex(of: "="), kv[..<eq] == name else { continue }
                return String(kv[kv.index(after: eq)...])
            }
        }
        return nil
    }

    /// An `application/x-www-form-urlencoded` body of at most ``maxFormBytes``; nil otherwise.
    static func form(_ req: Request) async throws -> [String: String]? {
        guard let type = req.headers[.contentType], type.lowercased().hasPrefix("application/x-www-form-urlencoded") else { return nil }
        let body: ByteBuffer
        do { body = try await req.body.collect(upTo: maxFormBytes) } catch { return nil }
        let text = String(buffer: body)
        var out = [String: String]()
        for pair in text.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = decode(kv[0]), out[key] == nil else { continue }
            out[key] = kv.count == 2 ? decode(kv[1]) ?? "" : ""
        }
        return out
    }

    static func decode(_ s: Substring) -> String? { s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding }

    /// Headers on every response: nothing cached (pages may hold personal data; figures are live),
    /// no script, no framing, nothing loaded from elsewhere, no referrer.
    static func headers(_ type: String) -> HTTPFields {
        var h = HTTPFields()
        h[.contentType] = type
        h[.cacheControl] = "no-store"
        h[.contentSecurityPolicy] =
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        h[.xContentTypeOptions] = "nosniff"
        h[.init("X-Frame-Options")!] = "DENY"
        h[.init("Referrer-Policy")!] = "no-referrer"
        return h
    }

    static func html(_ status: HTTPResponse.Status, _ body: String) -> Response {
        Response(status: status, headers: headers("text/html; charset=utf-8"), body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func text(_ status: HTTPResponse.Status, _ body: String) -> Response {
        Response(status: status, headers: headers("text/plain; charset=utf-8"), body: .init(byteBuffer: ByteBuffer(string: body + "\n")))
    }

    static func download(_ body: String, type: String, name: String) -> Response {
        var h = headers(type)
        h[.contentDisposition] = "attachment; filename=\"\(name)\""
        return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func redirect(_ to: String) -> Response {
        var h = headers("text/plain; charset=utf-8")
        h[.location] = to
        return Response(status: .seeOther, headers: h)
    }

    static func notFound() -> Response { text(.notFound, "not found") }
}

/// National and province pages rendered once per report and shared by every viewer (they hold no
/// personal data); only the viewer's name and sign-out token differ, filled in per request. A page
/// of a new report replaces the old ones, so the cache holds at most one generation (35 units × 2).
/// Commune pages (names: personal data) are never cached.
final class RenderCache: Sendable {
    struct Key: Hashable, Sendable {
        let path: String
        let generatedAt: Int64
        let canSeeNation: Bool
    }

    static let userMark = "\u{1}hocvu-user\u{1}"
    static let csrfMark = "\u{1}hocvu-csrf\u{1}"

    /// A rendered page cut at the stand-ins: pieces between viewer names, each cut again at the
    /// sign-out tokens, so filling in is plain concatenation (Foundation's string replacing is slow
    /// on Linux and cost more than rendering).
    struct Template: Sendable {
        let pieces: [[Substring]]

        init(_ html: String) {
            pieces = html.split(separator: RenderCache.userMark, omittingEmptySubsequences: false).map {
                $0.split(separator: RenderCache.csrfMark, omittingEmptySubsequences: false)
            }
        }

        /// `user` already HTML-escaped; `csrf` is hex.
        func fill(user: String, csrf: String) -> String {
            pieces.map { $0.joined(separator: csrf) }.joined(separator: user)
        }
    }

    private let rendered = Mutex<[Key: Template]>([:])

    func template(for key: Key, render: () -> String) -> Template {
        if let hit = rendered.withLock({ $0[key] }) { return hit }
        let template = Template(render())
        rendered.withLock { cache in
            // Only the newest report's pages are kept.
            if let other = cache.keys.first, other.generatedAt != key.generatedAt { cache.removeAll(keepingCapacity: true) }
            cache[key] = template
        }
        return template
    }
}
