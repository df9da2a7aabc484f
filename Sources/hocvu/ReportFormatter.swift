import Foundation
import Merge
import Store

/// Renders the national report for people (table) and programs (JSON, CSV; docs/report-format.md).
/// No personal data is in the report: only counts. Times are shown in Asia/Ho_Chi_Minh.
enum ReportFormatter {
    static func render(_ r: NationalReport, format: HocVu.Hub.Report.Format) -> String {
        switch format {
        case .json: json(r)
        case .csv: csv(r)
        case .table: table(r)
        }
    }

    static func json(_ r: NationalReport) -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? enc.encode(r)) ?? Data(), as: UTF8.self) + "\n"
    }

    /// The CSV header: one row per level (nation, province, commune), every commune included.
    static var csvHeader: [String] {
        ["level", "code", "name", "province_code", "roster", "roster_enrolled", "roster_certified", "certified_share"]
            + NationalReport.targets.map { "target_\($0.year)" }
            + ["off_roster", "off_roster_certified", "learners", "enrolled", "certified", "unbacked_certificates"]
            + Role.allCases.flatMap { ["roster_\($0.rawValue)", "roster_certified_\($0.rawValue)"] }
            + ["enrolled_site", "last_heard", "stale"]
    }

    /// RFC 4180 (CRLF, quotes doubled), UTF-8 with a byte-order mark so Excel reads Vietnamese names.
    static func csv(_ r: NationalReport) -> String {
        var lines = [csvHeader.map(csvField).joined(separator: ",")]
        func row(_ level: String, _ code: Int, _ name: String, _ province: Int, _ f: NationalReport.Figures,
                 site: Bool?, heard: Int64?, stale: Bool?) -> String {
            var fields: [String] = [level, "\(code)", name, "\(province)", "\(f.roster)", "\(f.rosterEnrolled)", "\(f.rosterCertified)",
                                    String(format: "%.4f", f.certifiedShare)]
            fields += NationalReport.targets.map { f.status(of: $0).rawValue }
            fields += ["\(f.offRoster)", "\(f.offRosterCertified)", "\(f.learners)", "\(f.enrolled)", "\(f.certified)",
                       "\(f.unbackedCertificates)"]
            for role in Role.allCases {
                let x = f.byRole[role.rawValue] ?? .init()
                fields += ["\(x.roster)", "\(x.rosterCertified)"]
            }
            fields += [site.map(String.init) ?? "", heard.map(local) ?? "", stale.map(String.init) ?? ""]
            return fields.map(csvField).joined(separator: ",")
        }
        lines.append(row("nation", 0, "Việt Nam", 0, r.national, site: nil, heard: nil, stale: nil))
        for p in r.provinces { lines.append(row("province", p.code, p.name, p.code, p.figures, site: nil, heard: nil, stale: nil)) }
        for c in r.communes {
            lines.append(row("commune", c.code, c.name, c.provinceCode, c.figures, site: c.enrolledSite, heard: c.lastHeardAt, stale: c.stale))
        }
        return "\u{FEFF}" + lines.joined(separator: "\r\n") + "\r\n"
    }

    static func table(_ r: NationalReport) -> String {
        var out = [String]()
        let n = r.national
        out.append("Generated \(local(r.generatedAt)) (Asia/Ho_Chi_Minh); a site is stale after \(r.staleAfter.seconds / 86_400) days of silence.")
        out.append(
            "National: \(n.rosterCertified) of \(n.roster) officials on the rosters certified (\(pct(n.certifiedShare))); "
                + targets(n))
        out.append(
            "Learners: \(n.learners) registered, \(n.enrolled) enrolled, \(n.certified) certified; "
                + "\(n.offRoster) on no roster (\(n.offRosterCertified) of them certified, not in the rate)"
                + (n.unbackedCertificates > 0 ? "; \(n.unbackedCertificates) certificates without completion evidence" : ""))
        out.append("")
        out.append(pad("ROLE", 30) + pad("ROSTER", 10) + pad("ENROLLED", 10) + pad("CERTIFIED", 11) + pad("SHARE", 9) + "OFF ROSTER")
        for role in Role.allCases {
            let x = n.byRole[role.rawValue] ?? .init()
            out.append(pad(role.rawValue, 30) + pad("\(x.roster)", 10) + pad("\(x.rosterEnrolled)", 10) + pad("\(x.rosterCertified)", 11)
                + pad(pct(x.certifiedShare), 9) + "\(x.offRoster)")
        }
        if !n.completedByCourse.isEmpty {
            out.append("")
            out.append("Completed per course:")
            let titles = Dictionary(r.courses.map { ($0.id, $0.title) }, uniquingKeysWith: { a, _ in a })
            let order = r.courses.map(\.id) + n.completedByCourse.keys.filter { titles[$0] == nil }.sorted()
            for id in order { if let k = n.completedByCourse[id] { out.append("  \(titles[id] ?? id) (\(id)): \(k)") } }
        }
        out.append("")
        out.append(pad("PROVINCE", 36) + pad("SITES", 7) + pad("STALE", 7) + pad("ROSTER", 9) + pad("CERTIFIED", 11) + pad("SHARE", 9) + "TARGETS")
        let quiet = r.provinces.filter { $0.sites == 0 && $0.figures.roster == 0 && $0.figures.learners == 0 }
        for p in r.provinces where !quiet.contains(where: { $0.code == p.code }) {
            out.append(pad(p.name, 36) + pad("\(p.sites)", 7) + pad("\(p.staleSites)", 7) + pad("\(p.figures.roster)", 9)
                + pad("\(p.figures.rosterCertified)", 11) + pad(pct(p.figures.certifiedShare), 9) + targets(p.figures))
        }
        if !quiet.isEmpty { out.append("(\(quiet.count) provinces with no site, roster or learner yet are left out here)") }
        out.append("")
        out.append("Communes with a site, a roster or learners (all \(r.communes.count) are in --format csv and json):")
        out.append(pad("COMMUNE", 40) + pad("ROSTER", 9) + pad("CERTIFIED", 11) + pad("SHARE", 9) + pad("LEARNERS", 10) + "LAST HEARD")
        for c in r.communes where c.enrolledSite || c.figures.roster > 0 || c.figures.learners > 0 {
            let heard = c.lastHeardAt.map(local) ?? (c.enrolledSite ? "never" : "-")
            out.append(pad("\(c.code) \(c.name)", 40) + pad("\(c.figures.roster)", 9) + pad("\(c.figures.rosterCertified)", 11)
                + pad(pct(c.figures.certifiedShare), 9) + pad("\(c.figures.learners)", 10) + heard + (c.stale ? "  STALE" : ""))
        }
        return out.joined(separator: "\n") + "\n"
    }

    static func targets(_ f: NationalReport.Figures) -> String {
        NationalReport.targets.map { t in
            let word = switch f.status(of: t) {
            case .met: "met"
            case .notMet: "not met"
            case .noRoster: "no roster"
            }
            return "\(t.year) target \(Int(t.share * 100)) %: \(word)"
        }.joined(separator: "; ")
    }

    static func pct(_ x: Double) -> String { String(format: "%.1f %%", x * 100) }

    /// An instant in Vietnam's time, e.g. 2026-03-01T09:30:00+07:00.
    static func local(_ ms: Int64) -> String { NodeStore.vietnamTime(ms) }

    static func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }

    static func csvField(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
            ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}
