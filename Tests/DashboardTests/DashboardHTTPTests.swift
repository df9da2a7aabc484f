import Dashboard
import Foundation
import Store
import Testing
import TestSupport

/// Every route and the access rules, over a real socket on 127.0.0.1 against a real SQLite hub
/// database (DashboardFixture).
// Serialized: each test starts a server and hashes passwords with Argon2id (64 MiB, ~0.2 s each);
// eight at once beside the rest of the suite on 2 cores only made each slower.
@Suite("Dashboard over HTTP: sign-in, sessions, CSRF, lockout, scopes, audit, downloads", .serialized)
struct DashboardHTTPTests {
    @Test("signing in opens the national page; its figures are the national report's; nothing is cached")
    func signInAndNationalPage() async throws {
        let f = try await DashboardFixture()
        defer { Task { await f.stop() } }
        let c = f.client

        let anonymous = try await c.get("/")
        #expect(anonymous.status == 303 && anonymous.header("location") == "/sign-in")
        #expect(try await c.get("/national").header("location") == "/sign-in")
        #expect(try await c.get("/national?format=csv").status == 401)

        let form = try await c.get("/sign-in")
        #expect(form.status == 200)
        #expect(form.text.contains("lang=\"vi\"") && form.text.contains("Đăng nhập"))
        let csrfLine = try #require(form.setCookieLine("hocvu_csrf"))
        #expect(csrfLine.contains("HttpOnly") && csrfLine.contains("SameSite=Strict"))

        let csrf = try #require(form.cookie("hocvu_csrf"))
        let ok = try await c.post("/sign-in", form: [("csrf", csrf), ("name", "quocgia"), ("password", DashboardFixture.password)], cookies: ["hocvu_csrf": csrf])
        #expect(ok.status == 303 && ok.header("location") == "/")
        let line = try #require(ok.setCookieLine("hocvu_session"))
        #expect(line.contains("HttpOnly") && line.contains("SameSite=Strict") && line.contains("Path=/"))
        #expect(!line.contains("Secure"), "plain HTTP on loopback: a Secure cookie would never be sent back")
        let session = try #require(ok.cookie("hocvu_session"))
        #expect(session.count == 64)

        #expect(try await c.get("/", cookies: ["hocvu_session": session]).header("location") == "/national")
        let page = try await c.get("/national", cookies: ["hocvu_session": session])
        #expect(page.status == 200)
        #expect(page.header("cache-control") == "no-store")
        #expect(page.header("content-type") == "text/html; charset=utf-8")
        #expect(page.header("content-security-policy")?.contains("default-src 'none'") == true)
        #expect(!page.text.contains("<script") && !page.text.contains("http://") || page.text.contains("http://www.w3.org/2000/svg"))
        #expect(page.text.contains("<svg"))

        let report = try f.store.nationalReport()
        #expect(report.national.roster == 5 && report.national.rosterCertified == 1)
        #expect(page.text.contains("id=\"roster\" data-value=\"\(report.national.roster)\""))
        #expect(page.text.contains("id=\"certified\" data-value=\"\(report.national.rosterCertified)\""))
        #expect(page.text.contains("<tr data-code=\"\(DashboardFixture.homeProvince)\">"))
        #expect(page.text.contains("Mục tiêu 2025 (40 %)") && page.text.contains("Mục tiêu 2026 (100 %)"))
        // Shown in Vietnamese form: 1 of 5 is "20,0 %".
        #expect(page.text.contains("20,0 %"))
        #expect(page.text.contains("id=\"by-role\"") && page.text.contains("Đại biểu HĐND cấp xã"))

        let audit = try f.store.dashboardAudit()
        #expect(audit.first?.action == .signIn && audit.first?.user == "quocgia")
        #expect(!audit.contains { $0.action == .viewRoster }, "aggregate pages are not personal data")
    }

    @Test("wrong passwords: 401 each time, then the account locks; the right password is refused until the lock ends")
    func lockout() async throws {
        let f = try await DashboardFixture()
        defer { Task { await f.stop() } }
        let c = f.client
        for attempt in 1...5 {
            let form = try await c.get("/sign-in")
            let csrf = try #require(form.cookie("hocvu_csrf"))
            let r = try await c.post("/sign-in", form: [("csrf", csrf), ("name", "quocgia"), ("password", "sai mật khẩu \(attempt)")], cookies: ["hocvu_csrf": csrf])
            #expect(r.status == 401)
            #expect(r.cookie("hocvu_session") == nil)
            #expect(r.text.contains("id=\"error\""))
        }
        await #expect(throws: HTTPClient.Failure.self) { _ = try await f.signIn("quocgia") }
        let locked = try #require(try f.store.dashboardUser(named: "quocgia")).user
        #expect(locked.lockedUntil == f.clock.now + 15 * 60_000 || (locked.lockedUntil ?? 0) > f.clock.now)
        let actions = try f.store.dashboardAudit().map(\.action)
        #expect(actions.contains(.locked))
        #expect(actions.filter { $0 == .signInRefused }.count == 5)  // 4 wrong passwords + the refused right one

        f.clock.advance(15 * 60_000 + 1)
        let session = try await f.signIn("quocgia")
        #expect(try await c.get("/national", cookies: ["hocvu_session": session]).status == 200)
        #expect(try f.store.dashboardUser(named: "quocgia")?.user.failedAttempts == 0)

        // An unknown name is refused the same way and leaves no name in the audit trail.
        let form = try await c.get("/sign-in")
        let csrf = try #require(form.cookie("hocvu_csrf"))
        let r = try await c.post("/sign-in", form: [("csrf", csrf), ("name", "khongco"), ("password", "x")], cookies: ["hocvu_csrf": csrf])
        #expect(r.status == 401)
        #expect(try f.store.dashboardAudit().first.map { $0.user == "-" && $0.target == "unknown name" } == true)
    }

    @Test("a form without the right CSRF token is refused: sign-in and sign-out")
    func csrf() async throws {
        let f = try await DashboardFixture()
        defer { Task { await f.stop() } }
        let c = f.client
        let form = try await c.get("/sign-in")
        let csrf = try #require(form.cookie("hocvu_csrf"))
        let good = [("name", "quocgia"), ("password", DashboardFixture.password)]
        // No token, a token without its cookie, a cookie with another token.
        for (fields, cookies) in [
            (good, ["hocvu_csrf": csrf]),
            ([("csrf", csrf)] + good, [:]),
            ([("csrf", String(repeating: "a", count: 64))] + good, ["hocvu_csrf": csrf]),
        ] {
            let r = try await c.post("/sign-in", form: fields, cookies: cookies)
            #expect(r.status == 403)
            #expect(r.cookie("hocvu_session") == nil)
        }
        #expect(try f.store.dashboardUser(named: "quocgia")?.user.failedAttempts == 0, "a CSRF refusal is no password guess")

        let session = try await f.signIn("quocgia")
        let page = try await c.get("/national", cookies: ["hocvu_session": session])
        let token = try #require(DashboardFixture.csrf(in: page.text))
        #expect(try await c.post("/sign-out", form: [], cookies: ["hocvu_session": session]).status == 403)
        #expect(try await c.post("/sign-out", form: [("csrf", String(token.reversed()))], cookies: ["hocvu_session": session]).status == 403)
        #expect(try await c.get("/national", cookies: ["hocvu_session": session]).status == 200, "a refused sign-out leaves the session")
        let out = try await c.post("/sign-out", form: [("csrf", token)], cookies: ["hocvu_session": session])
        #expect(out.status == 303 && out.header("location") == "/sign-in")
        #expect(out.setCookieLine("hocvu_session")?.contains("Max-Age=0") == true)
        #expect(try await c.get("/national", cookies: ["hocvu_session": session]).status == 303)
        #expect(try f.store.dashboardAudit().first?.action == .signOut)
    }

    @Test("a provincial viewer sees only its province: other provinces, their communes and downloads are refused by URL")
    func provincialScope() async throws {
        let f = try await DashboardFixture(users: [("hanoi", .province(DashboardFixture.homeProvince))])
        defer { Task { await f.stop() } }
        let c = f.client
        let s = ["hocvu_session": try await f.signIn("hanoi")]
        #expect(try await c.get("/", cookies: s).header("location") == "/province/\(DashboardFixture.homeProvince)")
        for path in [
            "/national", "/national?format=csv", "/national?format=json",
            "/province/\(f.otherProvince)", "/province/\(f.otherProvince)?format=csv", "/province/\(f.otherProvince)?format=json",
            "/commune/\(f.otherCommune)", "/commune/\(f.otherCommune)?format=csv", "/commune/\(f.otherCommune)?format=json",
        ] {
            let r = try await c.get(path, cookies: s)
            #expect(r.status == 403, "\(path)")
            #expect(!r.text.contains("Phạm Thị Dung"), "\(path)")
        }
        #expect(!(try f.store.dashboardAudit().contains { $0.action == .viewRoster }), "a refused page is not a view")

        let own = try await c.get("/province/\(DashboardFixture.homeProvince)", cookies: s)
        #expect(own.status == 200)
        #expect(own.text.contains("<tr data-code=\"\(DashboardFixture.homeCommune)\">"))
        #expect(!own.text.contains("href=\"/national\""), "no link to a page it may not open")
        let csv = try await c.get("/province/\(DashboardFixture.homeProvince)?format=csv", cookies: s)
        #expect(csv.status == 200 && csv.text.contains("\ncommune,\(DashboardFixture.homeCommune),"))
        let commune = try await c.get("/commune/\(DashboardFixture.homeCommune)", cookies: s)
        #expect(commune.status == 200 && commune.text.contains("Nguyễn Văn An"))
    }

    @Test("a commune page lists its people: never cached, audit-logged per view and download; CSV has a BOM and RFC 4180 quoting")
    func personalPages() async throws {
        let f = try await DashboardFixture()
        defer { Task { await f.stop() } }
        let c = f.client
        let s = ["hocvu_session": try await f.signIn("quocgia")]
        let page = try await c.get("/commune/\(DashboardFixture.homeCommune)", cookies: s)
        #expect(page.status == 200)
        #expect(page.header("cache-control") == "no-store")
        #expect(page.text.contains("Nguyễn Văn An"))
        #expect(page.text.contains("Trần &quot;Bé&quot;, Thị =Hoa"), "names are escaped in HTML")
        #expect(!page.text.contains("001200000001"), "national IDs are never shown")

        let csv = try await c.get("/commune/\(DashboardFixture.homeCommune)?format=csv", cookies: s)
        #expect(csv.status == 200)
        #expect(csv.header("cache-control") == "no-store")
        #expect(csv.header("content-type") == "text/csv; charset=utf-8")
        #expect(csv.header("content-disposition") == "attachment; filename=\"xa-\(DashboardFixture.homeCommune).csv\"")
        #expect(Array(csv.body.prefix(3)) == [0xEF, 0xBB, 0xBF], "UTF-8 byte-order mark")
        #expect(csv.text.contains("\r\n"))
        #expect(csv.text.contains("member,,\"Trần \"\"Bé\"\", Thị =Hoa\",,0,0,"), "quoted, quotes doubled")
        #expect(csv.text.contains("member,,Nguyễn Văn An,,1,1,"))
        #expect(csv.text.contains("member,,Hoàng Văn Em,,0,0,"))

        let json = try await c.get("/commune/\(DashboardFixture.homeCommune)?format=json", cookies: s)
        #expect(json.status == 200 && json.header("cache-control") == "no-store")
        let decoded = try JSONDecoder().decode(Page.self, from: json.body)
        let report = try f.store.nationalReport()
        let c70 = try #require(report.communes.first { $0.code == DashboardFixture.homeCommune })
        #expect(decoded.figures.roster == c70.figures.roster && decoded.figures.certified == c70.figures.rosterCertified)
        #expect(decoded.figures.roster == 3 && decoded.figures.certified == 1)
        #expect(decoded.members?.map(\.stage) == ["not_started", "certified", "not_started"], "by name: Hoàng, Nguyễn, Trần")

        let views = try f.store.dashboardAudit().filter { $0.action == .viewRoster }
        #expect(views.map(\.target) == ["json", "csv", "html"].map { "commune:\(DashboardFixture.homeCommune)/\($0)" })
        #expect(views.allSatisfy { $0.user == "quocgia" })
    }

    @Test("national and province downloads hold the report's figures")
    func downloads() async throws {
        let f = try await DashboardFixture()
        defer { Task { await f.stop() } }
        let c = f.client
        let s = ["hocvu_session": try await f.signIn("quocgia")]
        let report = try f.store.nationalReport()
        let csv = try await c.get("/national?format=csv", cookies: s)
        #expect(Array(csv.body.prefix(3)) == [0xEF, 0xBB, 0xBF])
        let lines = String(decoding: csv.body.dropFirst(3), as: UTF8.self).components(separatedBy: "\r\n")
        #expect(lines[0].hasPrefix("kind,code,name,roster,enrolled,certified,certified_rate"))
        #expect(lines[1].hasPrefix("nation,0,Toàn quốc,5,1,1,0.2000,false,false"))
        #expect(lines.filter { $0.hasPrefix("province,") }.count == report.provinces.count)
        let json = try JSONDecoder().decode(Page.self, from: try await c.get("/national?format=json", cookies: s).body)
        #expect(json.units.count == 34)
        for p in report.provinces {
            let row = try #require(json.units.first { $0.code == p.code })
            #expect(row.figures.roster == p.figures.roster && row.figures.certified == p.figures.rosterCertified && row.sites == p.sites)
        }
    }

    @Test("bad requests get 4xx, never a crash")
    func badRequests() async throws {
        let f = try await DashboardFixture()
        defer { Task { await f.stop() } }
        let c = f.client
        let s = ["hocvu_session": try await f.signIn("quocgia")]
        for (path, status) in [
            ("/province/abc", 404), ("/province/99999999999999999999", 404), ("/province/-1", 404), ("/province/999", 404),
            ("/commune/1", 404), ("/commune/%00", 404), ("/national?format=xml", 400), ("/nothing", 404), ("/province/1/x", 404),
        ] {
            #expect(try await c.get(path, cookies: s).status == status, "\(path)")
        }
        // Garbage or stale session cookies are "not signed in", not errors.
        for token in ["", "x", String(repeating: "g", count: 64), String(repeating: "0", count: 64), String(repeating: "a", count: 5_000)] {
            #expect(try await c.get("/national", cookies: ["hocvu_session": token]).status == 303)
        }
        // Not a form, a form too large, an oversized password.
        #expect(try await c.send("POST", "/sign-in", headers: ["Content-Type": "application/json"], body: Data("{}".utf8)).status == 400)
        #expect(try await c.send("POST", "/sign-in", headers: ["Content-Type": "application/x-www-form-urlencoded"], body: Data(repeating: 0x61, count: 100_000)).status == 400)
        let form = try await c.get("/sign-in")
        let csrf = try #require(form.cookie("hocvu_csrf"))
        let long = try await c.post("/sign-in", form: [("csrf", csrf), ("name", "quocgia"), ("password", String(repeating: "p", count: 5_000))], cookies: ["hocvu_csrf": csrf])
        #expect(long.status == 401)
        // Still serving.
        #expect(try await c.get("/national", cookies: s).status == 200)
    }

    @Test("a removed account's session ends at its next request")
    func removedUser() async throws {
        let f = try await DashboardFixture(users: [("quocgia", .national), ("tam", .national)])
        defer { Task { await f.stop() } }
        let s = ["hocvu_session": try await f.signIn("tam")]
        #expect(try await f.client.get("/national", cookies: s).status == 200)
        try f.store.removeDashboardUser(name: "tam")
        #expect(try await f.client.get("/national", cookies: s).header("location") == "/sign-in")
    }
}
