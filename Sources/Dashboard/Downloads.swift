import Foundation
import WebSupport
import Store

/// The CSV and JSON downloads of a page: the same ``Page`` value the HTML shows.
enum Downloads {
    /// UTF-8 with a byte-order mark (so Excel reads Vietnamese names right), CRLF line ends and
    /// RFC 4180 quoting. One row per thing the page shows: the unit itself, its breakdowns by role
    /// and course, its child units, and on a commune page its roster members.
    static func csv(_ page: Page) -> String {
        var lines = [
            "kind,code,name,roster,enrolled,certified,certified_rate,meets_2025,meets_2026,sites,stale_sites,last_heard,role,unit"
        ]
        func row(_ kind: String, _ code: String, _ name: String, _ f: PageFigures?, sites: Int? = nil, stale: Int? = nil,
                 heard: Int64? = nil, role: String = "", unit: String = "") -> String {
            let figures = f.map {
                ["\($0.roster)", "\($0.enrolled)", "\($0.certified)", String(format: "%.4f", $0.certifiedRate), "\($0.meets2025)", "\($0.meets2026)"]
            } ?? Array(repeating: "", count: 6)
            return ([kind, code, name] + figures + [sites.map(String.init) ?? "", stale.map(String.init) ?? "",
                                                    heard.map(Format.isoTime) ?? "", role, unit]).map(field).joined(separator: ",")
        }
        let own = page.level.rawValue
        lines.append(row(own, "\(page.code)", page.name, page.figures, heard: page.lastHeardAt))
        for r in page.byRole { lines.append(row("role", r.key, r.label, r.figures)) }
        for r in page.byCourse { lines.append(row("course", r.key, r.label, r.figures)) }
        let child = page.level == .nation ? "province" : "commune"
        for u in page.units {
            lines.append(row(child, "\(u.code)", u.name, u.figures, sites: u.sites, stale: u.staleSites, heard: u.lastHeardAt))
        }
        // A member's progress goes in the enrolled and certified columns (1/0), so a spreadsheet can sum them.
        for m in page.members ?? [] {
            lines.append(
                ["member", "", m.fullName, "", m.stage == "not_started" ? "0" : "1", m.stage == "certified" ? "1" : "0", "", "", "", "", "", "", m.role, m.unit]
                    .map(field).joined(separator: ","))
        }
        return "\u{FEFF}" + lines.joined(separator: "\r\n") + "\r\n"
    }

    /// One CSV field: quoted when it holds a comma, quote, CR or LF (RFC 4180, quotes doubled). A
    /// text starting with = + - @ would run as a formula in a spreadsheet; it gets a leading
    /// apostrophe (names come from imported files, which nobody vetted for that).
    static func field(_ s: String) -> String {
        var v = s
        if let first = v.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(first), Double(v) == nil { v = "'" + v }
        guard v.contains(where: { $0 == "," || $0 == "\"" || $0 == "\r" || $0 == "\n" || $0 == "\r\n" }) else { return v }
        return "\"" + v.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func json(_ page: Page) -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? enc.encode(page)) ?? Data("{}".utf8), as: UTF8.self)
    }
}
