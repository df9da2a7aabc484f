import Foundation
import WebSupport
import Store

/// The dashboard's pages in Vietnamese: plain HTML with inline CSS and inline SVG charts; no script
/// and nothing fetched from elsewhere. Figures carry their exact value in `data-value` so a test (or
/// a screen reader's user) can read them without parsing the Vietnamese number format.
enum HTMLPages {
    static let style = """
        body{font-family:sans-serif;margin:0;color:#212121;background:#fafafa}
        header{background:#b71c1c;color:#fff;padding:10px 20px;display:flex;justify-content:space-between;align-items:center}
        header a{color:#fff}main{padding:16px 20px;max-width:1100px}
        table{border-collapse:collapse;margin:8px 0 20px;background:#fff}
        th,td{border:1px solid #ddd;padding:4px 8px;text-align:left}td.n{text-align:right}
        th{background:#f0f0f0}.ok{color:#2e7d32;font-weight:bold}.no{color:#c62828;font-weight:bold}
        .stale{color:#c62828}.big{font-size:28px;font-weight:bold}nav{margin-bottom:12px}
        form.inline{display:inline}button{cursor:pointer}.note{color:#616161;font-size:13px}
        .signin{max-width:360px;margin:60px auto;background:#fff;padding:20px;border:1px solid #ddd}
        .signin input{width:100%;margin:4px 0 12px;padding:6px;box-sizing:border-box}.err{color:#c62828}
        """

    /// Text made safe for HTML (the one escaping the pages use).
    static func escaped(_ s: String) -> String { Format.html(s) }

    static func layout(title: String, user: String?, csrf: String?, body: String) -> String {
        var signOut = ""
        if let user, let csrf {
            signOut = """
                <span>\(Format.html(user)) · <form class="inline" method="post" action="/sign-out"><input type="hidden" name="csrf" value="\(csrf)"><button type="submit">Đăng xuất</button></form></span>
                """
        }
        return """
            <!DOCTYPE html>
            <html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(Format.html(title)) · Bình dân học vụ số</title><style>\(style)</style></head>
            <body><header><strong>Bình dân học vụ số – Tiến độ đào tạo</strong>\(signOut)</header><main>
            \(body)
            </main></body></html>
            """
    }

    static func signIn(csrf: String, error: String?) -> String {
        let message = error.map { "<p class=\"err\" id=\"error\">\(Format.html($0))</p>" } ?? ""
        return layout(
            title: "Đăng nhập", user: nil, csrf: nil,
            body: """
                <div class="signin"><h1>Đăng nhập</h1>\(message)
                <form method="post" action="/sign-in">
                <input type="hidden" name="csrf" value="\(csrf)">
                <label for="name">Tên đăng nhập</label><input id="name" name="name" autocomplete="username" required maxlength="64">
                <label for="password">Mật khẩu</label><input id="password" name="password" type="password" autocomplete="current-password" required>
                <button type="submit" id="submit">Đăng nhập</button>
                </form></div>
                """)
    }

    static func message(title: String, text: String, user: String?, csrf: String?) -> String {
        layout(title: title, user: user, csrf: csrf, body: "<h1>\(Format.html(title))</h1><p>\(Format.html(text))</p><p><a href=\"/\">Về trang đầu</a></p>")
    }

    static func num(_ n: Int, id: String? = nil) -> String {
        "<td class=\"n\"\(id.map { " id=\"\($0)\"" } ?? "") data-value=\"\(n)\">\(Format.count(n))</td>"
    }

    static func rate(_ f: PageFigures, id: String? = nil) -> String {
        "<td class=\"n\"\(id.map { " id=\"\($0)\"" } ?? "") data-value=\"\(f.certifiedRate)\">\(Format.percent(f.certifiedRate))</td>"
    }

    static func met(_ yes: Bool) -> String { yes ? "<span class=\"ok\">Đạt</span>" : "<span class=\"no\">Chưa đạt</span>" }

    static func unitPage(_ page: Page, user: String, csrf: String, canSeeNation: Bool) -> String {
        var b = ""
        // Breadcrumb: nation → province → commune (links only where the viewer may go).
        var crumbs = [String]()
        crumbs.append(canSeeNation ? "<a href=\"/national\">Toàn quốc</a>" : "Toàn quốc")
        if page.level == .province { crumbs.append(Format.html(page.name)) }
        if page.level == .commune {
            if let p = page.provinceCode { crumbs.append("<a href=\"/province/\(p)\">\(Format.html(page.provinceName ?? "Tỉnh \(p)"))</a>") }
            crumbs.append(Format.html(page.name))
        }
        let levelName = ["nation": "Toàn quốc", "province": "Tỉnh, thành phố", "commune": "Xã, phường, đặc khu"][page.level.rawValue] ?? ""
        b += "<nav>\(crumbs.joined(separator: " › "))</nav>"
        b += "<h1 id=\"unit-name\" data-level=\"\(page.level.rawValue)\" data-code=\"\(page.code)\">\(Format.html(page.name))</h1>"
        b += "<p class=\"note\">\(levelName) · số liệu lúc \(Format.time(page.generatedAt)) (giờ Việt Nam)</p>"
        let f = page.figures
        b += """
            <p><span class="big" id="rate" data-value="\(f.certifiedRate)">\(Format.percent(f.certifiedRate))</span>
            số người phải học đã có chứng chỉ (\(Format.count(f.certified)) / \(Format.count(f.roster)))</p>
            <table id="summary"><tr><th>Danh sách phải đào tạo</th><th>Đã ghi danh</th><th>Có chứng chỉ</th><th>Tỷ lệ</th><th>Mục tiêu 2025 (40 %)</th><th>Mục tiêu 2026 (100 %)</th></tr>
            <tr>\(num(f.roster, id: "roster"))\(num(f.enrolled, id: "enrolled"))\(num(f.certified, id: "certified"))\(rate(f))<td id="meets2025">\(met(f.meets2025))</td><td id="meets2026">\(met(f.meets2026))</td></tr></table>
            <p class="note">Người học không có trong danh sách (tính riêng, không vào tỷ lệ): <span id="off-roster" data-value="\(f.offRoster)">\(Format.count(f.offRoster))</span>, trong đó có chứng chỉ: <span id="off-roster-certified" data-value="\(f.offRosterCertified)">\(Format.count(f.offRosterCertified))</span>.</p>
            """
        b += "<p>Tải về: <a href=\"?format=csv\" download>CSV</a> · <a href=\"?format=json\" download>JSON</a></p>"
        b += "<h2>Xu hướng theo ngày</h2>" + Charts.trend(page.trend, title: "Tỷ lệ có chứng chỉ theo ngày")
        b += "<h2>Theo vai trò</h2>" + breakdown(page.byRole, id: "by-role", header: "Vai trò")
        b += "<h2>Theo khóa học</h2>" + breakdown(page.byCourse, id: "by-course", header: "Khóa học", completions: true)
        if page.level == .nation || page.level == .province {
            let child = page.level == .nation ? "Tỉnh, thành phố" : "Xã, phường, đặc khu"
            let link = page.level == .nation ? "/province/" : "/commune/"
            b += "<h2>\(child)</h2>"
            b += Charts.bars(page.units.filter { $0.figures.roster > 0 }.map { ($0.name, $0.figures.certifiedRate) }, title: "Tỷ lệ theo \(child.lowercased())")
            b += "<table id=\"units\"><tr><th>Mã</th><th>\(child)</th><th>Danh sách</th><th>Ghi danh</th><th>Có chứng chỉ</th><th>Tỷ lệ</th>"
            b += page.level == .nation ? "<th>Điểm cầu</th><th>Mất liên lạc</th></tr>" : "<th>Liên lạc lần cuối</th></tr>"
            for u in page.units {
                b += "<tr data-code=\"\(u.code)\"><td>\(u.code)</td><td><a href=\"\(link)\(u.code)\">\(Format.html(u.name))</a></td>"
                b += num(u.figures.roster) + num(u.figures.enrolled) + num(u.figures.certified) + rate(u.figures)
                if page.level == .nation {
                    b += num(u.sites) + "<td class=\"n\(u.staleSites > 0 ? " stale" : "")\" data-value=\"\(u.staleSites)\">\(Format.count(u.staleSites))</td></tr>"
                } else {
                    b += "<td\(u.staleSites > 0 ? " class=\"stale\"" : "")>\(heard(u.lastHeardAt, site: u.sites > 0, stale: u.staleSites > 0))</td></tr>"
                }
            }
            b += "</table>"
            let stale = page.units.filter { $0.staleSites > 0 }
            b += "<p class=\"note\">Điểm cầu mất liên lạc: không nhận được tin quá \(page.staleAfterSeconds / 3_600) giờ. Hiện có \(Format.count(stale.reduce(0) { $0 + $1.staleSites })).</p>"
        }
        if page.level == .commune {
            b += "<p>Điểm cầu: <span id=\"last-heard\"\(page.stale == true ? " class=\"stale\"" : "")>\(heard(page.lastHeardAt, site: page.lastHeardAt != nil || page.stale == true, stale: page.stale == true))</span></p>"
            b += "<h2>Danh sách phải đào tạo</h2><p class=\"note\">Trang này có dữ liệu cá nhân: mỗi lần xem được ghi lại.</p>"
            b += "<table id=\"members\"><tr><th>Họ và tên</th><th>Vai trò</th><th>Đơn vị</th><th>Tiến độ</th></tr>"
            for m in page.members ?? [] {
                let role = Format.roleLabels[m.role] ?? m.role
                let stage = ["certified": "Đã có chứng chỉ", "enrolled": "Đang học", "not_started": "Chưa bắt đầu"][m.stage] ?? m.stage
                b += "<tr data-stage=\"\(Format.html(m.stage))\"><td>\(Format.html(m.fullName))</td><td>\(Format.html(role))</td><td>\(Format.html(m.unit))</td><td>\(stage)</td></tr>"
            }
            b += "</table>"
        }
        return layout(title: page.name, user: user, csrf: csrf, body: b)
    }

    static func heard(_ at: Int64?, site: Bool, stale: Bool) -> String {
        guard site || at != nil else { return "chưa có điểm cầu" }
        let when = at.map { Format.time($0) } ?? "chưa bao giờ"
        return stale ? "\(when) (mất liên lạc)" : when
    }

    static func breakdown(_ rows: [BreakdownRow], id: String, header: String, completions: Bool = false) -> String {
        guard !rows.isEmpty else { return "<p class=\"note\" id=\"\(id)\">Chưa có số liệu.</p>" }
        var t = "<table id=\"\(id)\"><tr><th>\(header)</th><th>Danh sách</th><th>\(completions ? "Hoàn thành" : "Có chứng chỉ")</th><th>Tỷ lệ</th></tr>"
        for r in rows {
            t += "<tr data-key=\"\(Format.html(r.key))\"><td>\(Format.html(r.label))</td>" + num(r.figures.roster) + num(r.figures.certified) + rate(r.figures) + "</tr>"
        }
        return t + "</table>"
    }
}
