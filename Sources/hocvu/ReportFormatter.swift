import Foundation
import Store

/// Renders the national report for people (table) and programs (JSON, CSV). No personal data
/// is in the report: only counts.
enum ReportFormatter {
    static func render(_ r: NationalReport, format: HocVu.Hub.Report.Format) -> String {
        switch format {
        case .json:
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            return String(decoding: (try? enc.encode(r)) ?? Data(), as: UTF8.self)
        case .csv:
            var lines = ["level,code,name,province_code,learners,enrolled,certified,certified_rate,meets_2025,meets_2026,last_heard,stale"]
            func row(_ level: String, _ code: Int, _ name: String, _ province: Int, _ f: NationalReport.Figures, _ heard: Int64?, _ stale: Bool?) -> String {
                let h = heard.map { iso($0) } ?? ""
                return "\(level),\(code),\(csv(name)),\(province),\(f.learners),\(f.enrolled),\(f.certified),\(String(format: "%.4f", f.certifiedRate)),\(f.meets2025),\(f.meets2026),\(h),\(stale.map(String.init) ?? "")"
            }
            lines.append(row("nation", 0, "Việt Nam", 0, r.national, nil, nil))
            for p in r.provinces where p.figures.learners > 0 || p.sites > 0 {
                lines.append(row("province", p.code, p.name, p.code, p.figures, nil, nil))
            }
            for c in r.communes { lines.append(row("commune", c.code, c.name, c.provinceCode, c.figures, c.lastHeardAt, c.stale)) }
            return lines.joined(separator: "\n")
        case .table:
            var out = [String]()
            let n = r.national
            out.append("National: \(n.learners) learners, \(n.enrolled) enrolled, \(n.certified) certified (\(pct(n.certifiedRate))); "
                + "2025 target 40 %: \(n.meets2025 ? "met" : "not met"); 2026 target 100 %: \(n.meets2026 ? "met" : "not met")")
            if !n.completedByCourse.isEmpty {
                out.append("Completed per course: " + n.completedByCourse.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            }
            out.append("")
            out.append(pad("PROVINCE", 36) + pad("SITES", 7) + pad("STALE", 7) + pad("LEARNERS", 10) + pad("CERTIFIED", 11) + "RATE")
            for p in r.provinces where p.figures.learners > 0 || p.sites > 0 {
                out.append(pad(p.name, 36) + pad("\(p.sites)", 7) + pad("\(p.staleSites)", 7) + pad("\(p.figures.learners)", 10)
                    + pad("\(p.figures.certified)", 11) + pct(p.figures.certifiedRate))
            }
            out.append("")
            out.append(pad("COMMUNE", 40) + pad("LEARNERS", 10) + pad("CERTIFIED", 11) + pad("RATE", 8) + "LAST HEARD")
            for c in r.communes {
                let heard = c.lastHeardAt.map { iso($0) } ?? (c.enrolledSite ? "never" : "-")
                out.append(pad("\(c.code) \(c.name)", 40) + pad("\(c.figures.learners)", 10) + pad("\(c.figures.certified)", 11)
                    + pad(pct(c.figures.certifiedRate), 8) + heard + (c.stale ? "  STALE" : ""))
            }
            return out.joined(separator: "\n")
        }
    }

    static func pct(_ x: Double) -> String { String(format: "%.1f %%", x * 100) }
    static func iso(_ ms: Int64) -> String { ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(ms) / 1000)) }
    static func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
    static func csv(_ s: String) -> String { s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s }
}
