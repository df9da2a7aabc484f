public import Foundation
import Store

/// How the web pages (the hub's dashboard, a site's portal) write numbers, shares and times for Vietnamese readers, and escapes text.
public enum Format {
    /// Vietnam has kept UTC+7 since 1975 and has no daylight saving time; the fixed offset is used
    /// if the system's time-zone data lacks the name.
    public static let vietnam = TimeZone(identifier: "Asia/Ho_Chi_Minh") ?? TimeZone(secondsFromGMT: 7 * 3_600)!

    /// "1.234.567": Vietnamese groups thousands with a dot.
    public static func count(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out.append(".") }
            out.append(ch)
        }
        return n < 0 ? "-" + out : out
    }

    /// "42,5 %": a share with one decimal and a decimal comma.
    public static func percent(_ x: Double) -> String {
        let tenths = Int((x * 1_000).rounded())
        return "\(count(tenths / 10)),\(tenths % 10) %"
    }

    /// "01/12/2026 19:35" in Asia/Ho_Chi_Minh.
    public static func time(_ ms: Int64) -> String {
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: Date(timeIntervalSince1970: Double(ms) / 1_000))
        return String(format: "%02d/%02d/%04d %02d:%02d", c.day ?? 0, c.month ?? 0, c.year ?? 0, c.hour ?? 0, c.minute ?? 0)
    }

    /// "2026-12-01T19:35:00+07:00": for downloads (machines), still in Vietnam's time.
    public static func isoTime(_ ms: Int64) -> String { NodeStore.vietnamTime(ms) }

    /// "01/12" for a day written yyyy-MM-dd (trend axes).
    public static func shortDay(_ day: String) -> String {
        let parts = day.split(separator: "-")
        guard parts.count == 3 else { return day }
        return "\(parts[2])/\(parts[1])"
    }

    /// Days since 1970-01-01 of a yyyy-MM-dd date (proleptic Gregorian), nil if malformed.
    public static func dayNumber(_ day: String) -> Int? {
        let parts = day.split(separator: "-").compactMap { Int($0) }
        guard parts.count == 3, (1...12).contains(parts[1]), (1...31).contains(parts[2]) else { return nil }
        // Howard Hinnant's days_from_civil.
        let y = parts[1] <= 2 ? parts[0] - 1 : parts[0]
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (parts[1] + 9) % 12
        let doy = (153 * mp + 2) / 5 + parts[2] - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    public static let calendar: Calendar = {
        var c = Calendar(identifier: .gregorian)
        c.timeZone = vietnam
        return c
    }()

    /// Text for HTML element content and attribute values (both quoted with ").
    public static func html(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    /// Roles as Vietnamese readers name them.
    public static let roleLabels: [String: String] = [
        "na_deputy": "Đại biểu Quốc hội",
        "provincial_council_delegate": "Đại biểu HĐND cấp tỉnh",
        "commune_council_delegate": "Đại biểu HĐND cấp xã",
        "civil_servant": "Công chức, viên chức",
        "other": "Khác",
    ]
}
