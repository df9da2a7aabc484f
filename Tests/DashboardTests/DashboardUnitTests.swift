@testable import Dashboard
import WebSupport
import Foundation
import Sodium
import Store
import Testing

@Suite("Dashboard pieces without a server")
struct DashboardUnitTests {
    @Test("Argon2id hashes verify the right password only; a malformed hash is false, not a trap")
    func passwords() throws {
        let h = try #require(PasswordHash.hash("đúng mật khẩu"))
        #expect(h.hasPrefix("$argon2id$"))
        #expect(PasswordHash.verify("đúng mật khẩu", against: h))
        #expect(!PasswordHash.verify("sai mật khẩu", against: h))
        #expect(!PasswordHash.verify("đúng mật khẩu", against: "$argon2id$garbage"))
        #expect(!PasswordHash.verify("x", against: String(repeating: "$", count: 500)))
        #expect(PasswordHash.hash(String(repeating: "a", count: PasswordHash.maxPasswordBytes + 1)) == nil)
        #expect(Sodium.constantTimeEquals(Data("abc".utf8), Data("abc".utf8)))
        #expect(!Sodium.constantTimeEquals(Data("abc".utf8), Data("abd".utf8)))
        #expect(!Sodium.constantTimeEquals(Data("abc".utf8), Data("abcd".utf8)))
    }

    @Test("Vietnamese number, share and time formats; Asia/Ho_Chi_Minh is UTC+7")
    func formats() {
        #expect(Format.count(0) == "0" && Format.count(999) == "999" && Format.count(1_234_567) == "1.234.567")
        #expect(Format.percent(0.425) == "42,5 %" && Format.percent(1) == "100,0 %" && Format.percent(0) == "0,0 %")
        #expect(Format.time(1_767_225_600_000) == "01/01/2026 07:00")
        #expect(Format.isoTime(1_767_225_600_000) == "2026-01-01T07:00:00+07:00")
        #expect(Format.html("<a href=\"x\">&'") == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;")
    }

    @Test("CSV fields: RFC 4180 quoting, formulas defused")
    func csvFields() {
        #expect(Downloads.field("Hà Nội") == "Hà Nội")
        #expect(Downloads.field("a,b") == "\"a,b\"")
        #expect(Downloads.field("say \"hi\"") == "\"say \"\"hi\"\"\"")
        #expect(Downloads.field("line\nbreak") == "\"line\nbreak\"")
        #expect(Downloads.field("=HYPERLINK(1)") == "'=HYPERLINK(1)")
        #expect(Downloads.field("-0.5") == "-0.5")
    }

    @Test("charts are SVG with both targets; the trend draws a line through its points")
    func charts() throws {
        let bars = Charts.bars([("Hà Nội", 0.5), ("Huế <x>", 1.2)], title: "t")
        #expect(bars.hasPrefix("<svg") && bars.hasSuffix("</svg>"))
        #expect(bars.contains("2025: 40 %") && bars.contains("2026: 100 %"))
        #expect(bars.contains("Huế &lt;x&gt;") && bars.contains("100,0 %"), "escaped, clamped to 100 %")
        let points = try JSONDecoder().decode([TrendPoint].self, from: Data("""
            [{"day": "2026-01-01", "roster": 10, "rosterEnrolled": 2, "rosterCertified": 1, "learners": 3, "certified": 1},
             {"day": "2026-01-05", "roster": 10, "rosterEnrolled": 5, "rosterCertified": 4, "learners": 6, "certified": 4}]
            """.utf8))
        let trend = Charts.trend(points, title: "t")
        #expect(trend.contains("<polyline") && trend.contains("01/01") && trend.contains("05/01") && trend.contains("40,0 %"))
        #expect(Format.dayNumber("1970-01-01") == 0 && Format.dayNumber("2026-01-01") == 20_454 && Format.dayNumber("2026-13-01") == nil)
        #expect(Charts.trend([], title: "t").contains("Chưa có số liệu"))
    }

    @Test("sessions expire when idle and at their absolute limit; malformed tokens are never looked up")
    func sessions() {
        let s = SessionStore(idleMilliseconds: 1_000, absoluteMilliseconds: 5_000, capacity: 2)
        let (token, session) = s.create(user: "a", now: 0)
        #expect(SessionStore.isTokenShaped(token) && SessionStore.isTokenShaped(session.csrf) && token != session.csrf)
        #expect(s.session(token: token, now: 900)?.user == "a")
        #expect(s.session(token: token, now: 1_800)?.user == "a", "use keeps it alive")
        #expect(s.session(token: token, now: 2_801) == nil, "idle too long")
        let (t2, _) = s.create(user: "b", now: 0)
        for at in stride(from: 900, through: 4_500, by: 900) { #expect(s.session(token: t2, now: Int64(at)) != nil) }
        #expect(s.session(token: t2, now: 5_001) == nil, "absolute limit")
        #expect(s.session(token: "../../etc", now: 0) == nil && s.session(token: token.uppercased(), now: 0) == nil)
        _ = s.create(user: "c", now: 10_000)
        _ = s.create(user: "d", now: 10_001)
        _ = s.create(user: "e", now: 10_002)
        #expect(s.count == 2, "capacity bounds memory")
    }

    @Test("a commune's roster is listed in Vietnamese alphabetical order, not SQLite's byte order")
    func vietnameseOrder() {
        let names = ["Vũ Hữu Quân", "Đặng Thị Bình", "Dương Ngọc Hải", "Bùi Đức Chi", "Ăn Văn A", "An Văn B"]
        #expect(names.sorted(by: PageBuilder.inVietnameseOrder) == ["An Văn B", "Ăn Văn A", "Bùi Đức Chi", "Dương Ngọc Hải", "Đặng Thị Bình", "Vũ Hữu Quân"])
    }
}
