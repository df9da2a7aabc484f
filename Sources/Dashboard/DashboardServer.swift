import Foundation
import Hummingbird
public import Logging
public import ServiceLifecycle
import Sodium
public import Store
import Synchronization
import WebSupport

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
        return Web.application(
            name: "Dashboard", router: router, host: configuration.host, port: configuration.port, logger: logger, onRunning: onRunning)
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
    /// Caps Argon2id verifications in flight; unknown names cost the time of a wrong password.
    let gate = SignInGate()

    static let sessionCookie = "hocvu_session"
    static let csrfCookie = "hocvu_csrf"

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
            guard let v = try self.viewer(req) else { return Web.redirect("/sign-in") }
            switch v.scope {
            case .national: return Web.redirect("/national")
            case .province(let p): return Web.redirect("/province/\(p)")
            }
        }
        router.get("/sign-in") { req, _ in self.signInForm(req, status: .ok, error: nil) }
        router.post("/sign-in") { req, _ in try await self.signIn(req) }
        router.post("/sign-out") { req, _ in try await self.signOut(req) }
        router.get("/national") { req, _ in
            try self.page(req, allowed: { $0 == .national }) { try self.pages.nation(try self.pages.report()) }
        }
        router.get("/province/:code") { req, ctx in
            guard let code = Self.code(ctx.parameters.get("code")) else { return Web.notFound() }
            return try self.page(req, allowed: { $0.covers(province: code) }) { try self.pages.province(code, try self.pages.report()) }
        }
        router.get("/commune/:code") { req, ctx in
            guard let code = Self.code(ctx.parameters.get("code")), let province = self.pages.province(ofCommune: code) else {
                return Web.notFound()
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
            return Web.text(.badRequest, "format must be html, csv or json")
        }
        guard let v = try viewer(req) else {
            return format == .html ? Web.redirect("/sign-in") : Web.text(.unauthorized, "sign in first: /sign-in")
        }
        guard allowed(v.scope) else {
            logger.notice("Dashboard refused a page outside the viewer's scope", metadata: ["user": "\(v.name)", "path": "\(req.uri.path)"])
            return forbidden(v)
        }
        if let personal {
            try store.appendDashboardAudit(user: v.name, action: .viewRoster, target: "\(personal)/\(format.rawValue)")
        }
        guard let page = try build() else { return Web.notFound() }
        switch format {
        case .html where personal == nil:
            // The same figures for every viewer until the report is recomputed: render once with
            // stand-ins for the viewer's name and sign-out token, fill those in per request.
            let key = RenderCache.Key(path: req.uri.path, generatedAt: page.generatedAt, canSeeNation: v.scope == .national)
            let template = renders.template(for: key) {
                HTMLPages.unitPage(page, user: RenderCache.userMark, csrf: RenderCache.csrfMark, canSeeNation: key.canSeeNation)
            }
            return Web.html(.ok, template.fill(user: HTMLPages.escaped(v.name), csrf: v.csrf))
        case .html:
            return Web.html(.ok, HTMLPages.unitPage(page, user: v.name, csrf: v.csrf, canSeeNation: v.scope == .national))
        case .csv:
            return Web.download(Downloads.csv(page), type: "text/csv; charset=utf-8", name: Self.fileName(page, "csv"))
        case .json:
            return Web.download(Downloads.json(page), type: "application/json; charset=utf-8", name: Self.fileName(page, "json"))
        }
    }

    func forbidden(_ v: Viewer) -> Response {
        Web.html(.forbidden, HTMLPages.message(title: "Không có quyền xem", text: "Tài khoản này không được xem trang này.", user: v.name, csrf: v.csrf))
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
        guard let token = Web.cookie(req, Self.sessionCookie), let s = sessions.session(token: token, now: now()) else { return nil }
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
        var r = Web.html(status, HTMLPages.signIn(csrf: csrf, error: error))
        r.headers[values: .setCookie].append(Web.setCookie(Self.csrfCookie, csrf, maxAge: 3_600, secure: secureCookies))
        return r
    }

    func signIn(_ req: Request) async throws -> Response {
        guard let form = try await Web.form(req) else { return Web.text(.badRequest, "expected a form (application/x-www-form-urlencoded, at most 8 KiB)") }
        guard Web.tokensMatch(form["csrf"], Web.cookie(req, Self.csrfCookie)) else {
            return signInForm(req, status: .forbidden, error: "Phiên biểu mẫu đã hết hạn hoặc không hợp lệ. Vui lòng đăng nhập lại.")
        }
        let refused = "Sai tên đăng nhập hoặc mật khẩu, hoặc tài khoản đang tạm khóa. Vui lòng thử lại sau."
        let name = form["name"] ?? "", password = form["password"] ?? ""
        guard password.utf8.count <= PasswordHash.maxPasswordBytes else { return signInForm(req, status: .unauthorized, error: refused) }
        let verified = try await gate.withSlot { () async throws -> Response in
            guard let found = try store.dashboardUser(named: name) else {
                await gate.decoy(password)
                try store.appendDashboardAudit(user: "-", action: .signInRefused, target: "unknown name")
                logger.notice("Dashboard sign-in refused: unknown name")
                return signInForm(req, status: .unauthorized, error: refused)
            }
            if lockout.isLocked(found.user, now: now()) {
                await gate.decoy(password)  // same time as a wrong password
                try store.appendDashboardAudit(user: name, action: .signInRefused, target: "locked")
                logger.notice("Dashboard sign-in refused: account locked", metadata: ["user": "\(name)"])
                return signInForm(req, status: .unauthorized, error: refused)
            }
            guard await gate.verify(password, against: found.passwordHash) else {
                let lockedNow = try store.recordDashboardSignInFailure(name: name, policy: lockout)
                try store.appendDashboardAudit(user: name, action: lockedNow ? .locked : .signInRefused, target: "wrong password")
                logger.notice(lockedNow ? "Dashboard account locked after repeated wrong passwords" : "Dashboard sign-in refused: wrong password", metadata: ["user": "\(name)"])
                return signInForm(req, status: .unauthorized, error: refused)
            }
            try store.recordDashboardSignInSuccess(name: name)
            try store.appendDashboardAudit(user: name, action: .signIn)
            let (token, _) = sessions.create(user: name, now: now())
            logger.info("Dashboard sign-in", metadata: ["user": "\(name)"])
            var r = Web.redirect("/")
            r.headers[values: .setCookie].append(Web.setCookie(Self.sessionCookie, token, maxAge: nil, secure: secureCookies))
            r.headers[values: .setCookie].append(Web.setCookie(Self.csrfCookie, "", maxAge: 0, secure: secureCookies))
            return r
        }
        return verified ?? Web.text(.serviceUnavailable, "too many sign-ins at once; try again in a moment")
    }

    func signOut(_ req: Request) async throws -> Response {
        guard let v = try viewer(req) else { return Web.redirect("/sign-in") }
        guard let form = try await Web.form(req), Web.tokensMatch(form["csrf"], v.csrf) else {
            return Web.html(.forbidden, HTMLPages.message(title: "Yêu cầu không hợp lệ", text: "Biểu mẫu không mang mã bảo vệ đúng (CSRF).", user: v.name, csrf: v.csrf))
        }
        sessions.remove(token: v.token)
        try store.appendDashboardAudit(user: v.name, action: .signOut)
        var r = Web.redirect("/sign-in")
        r.headers[values: .setCookie].append(Web.setCookie(Self.sessionCookie, "", maxAge: 0, secure: secureCookies))
        return r
    }

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
