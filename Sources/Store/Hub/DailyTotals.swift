public import Foundation
import GRDB

/// One day of a unit's trend: totals as they stood at the end of that Vietnam day (or now, today).
public struct TrendPoint: Codable, Equatable, Sendable {
    /// yyyy-MM-dd in Asia/Ho_Chi_Minh.
    public var day: String
    public var roster: Int
    public var rosterEnrolled: Int
    public var rosterCertified: Int
    public var learners: Int
    public var certified: Int

    public var certifiedShare: Double { roster == 0 ? 0 : Double(rosterCertified) / Double(roster) }
}

/// Whose trend: the nation, a province or a commune (official codes).
public enum TrendUnit: Sendable, Equatable {
    case nation
    case province(Int)
    case commune(Int)

    var key: Int {
        switch self {
        case .nation: 0
        case .province(let code): -code
        case .commune(let code): code
        }
    }
}

extension NodeStore {
    /// The Vietnam calendar day (UTC+7 all year, no daylight saving) of `ms` since the epoch.
    public static func vietnamDay(_ ms: Int64) -> String {
        let (year, month, day, _) = vietnamCivil(ms)
        return String(format: "%04d-%02d-%02d", year, month, day)
    }

    /// `ms` since the epoch as ISO 8601 in Vietnam's time, e.g. 2026-03-01T09:30:00+07:00. Plain
    /// arithmetic: no formatter to create per row, nothing shared between threads.
    public static func vietnamTime(_ ms: Int64) -> String {
        let (year, month, day, seconds) = vietnamCivil(ms)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d+07:00", year, month, day, seconds / 3_600, seconds / 60 % 60, seconds % 60)
    }

    /// Year, month, day and seconds into the day, in UTC+7.
    static func vietnamCivil(_ ms: Int64) -> (Int64, Int64, Int64, Int64) {
        let shifted = ms.addingReportingOverflow(7 * 3_600_000).partialValue
        let days = shifted.quotientAndRemainder(dividingBy: 86_400_000)
        let d = days.remainder < 0 ? days.quotient - 1 : days.quotient
        let msInDay = shifted - d * 86_400_000
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = d + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day, msInDay / 1_000)
    }

    /// Hub: writes today's row of the trend (the hub does so every hour; the last write of a day
    /// stands for it). Nation and provinces get a row every day; a commune only when its totals
    /// differ from its last row. Returns the rows written.
    ///
    /// `day` (yyyy-MM-dd): the day to write, today by default; the hub passes the day that just
    /// ended at its first round after midnight, so a day's row holds its totals at its end.
    @discardableResult
    public func snapshotDailyTotals(day: String? = nil) throws -> Int {
        let day = day ?? Self.vietnamDay(now())
        return try pool.write { db in
            try db.execute(sql: "DELETE FROM daily_totals WHERE day = ?", arguments: [day])
            let columns = "roster, roster_enrolled, roster_certified, learners, certified"
            let sums = "sum(t.roster), sum(t.roster_enrolled), sum(t.roster_certified), sum(t.learners), sum(t.certified)"
            try db.execute(
                sql: """
                    INSERT INTO daily_totals (unit, role, day, \(columns))
                    SELECT 0, t.role, ?, \(sums) FROM commune_role_totals t GROUP BY t.role;
                    INSERT INTO daily_totals (unit, role, day, \(columns))
                    SELECT -c.province_code, t.role, ?, \(sums)
                    FROM commune_role_totals t JOIN commune c ON c.code = t.commune_code GROUP BY c.province_code, t.role;
                    """, arguments: [day, day])
            // Communes: only what moved since their last row (a commune with nothing yet writes nothing).
            try db.execute(
                sql: """
                    INSERT INTO daily_totals (unit, role, day, \(columns))
                    SELECT t.commune_code, t.role, ?1, t.roster, t.roster_enrolled, t.roster_certified, t.learners, t.certified
                    FROM commune_role_totals t
                    LEFT JOIN daily_totals p ON p.unit = t.commune_code AND p.role = t.role
                      AND p.day = (SELECT max(q.day) FROM daily_totals q WHERE q.unit = t.commune_code AND q.role = t.role AND q.day < ?1)
                    WHERE CASE WHEN p.unit IS NULL
                      THEN t.roster + t.roster_enrolled + t.roster_certified + t.learners + t.certified > 0
                      ELSE (p.roster, p.roster_enrolled, p.roster_certified, p.learners, p.certified)
                        IS NOT (t.roster, t.roster_enrolled, t.roster_certified, t.learners, t.certified) END
                    """, arguments: [day])
            return try Int.fetchOne(db, sql: "SELECT count(*) FROM daily_totals WHERE day = ?", arguments: [day]) ?? 0
        }
    }

    /// The trend of one unit, a point per snapshot day, oldest first (all roles together).
    public func trend(_ unit: TrendUnit) throws -> [TrendPoint] {
        try pool.read { db in
            let days = try String.fetchAll(db, sql: "SELECT DISTINCT day FROM daily_totals WHERE unit = 0 ORDER BY day")
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT day, role, roster, roster_enrolled, roster_certified, learners, certified
                    FROM daily_totals WHERE unit = ? ORDER BY day
                    """, arguments: [unit.key])
            // Communes have rows only on change: each role's last row carries forward.
            var current = [String: [Int]]()
            var byDay = [String: [Row]]()
            for r in rows { byDay[r["day"], default: []].append(r) }
            var out = [TrendPoint]()
            for day in days {
                // Nation and provinces have a row per role every day: start each day afresh.
                if unit.key <= 0 { current = [:] }
                for r in byDay[day] ?? [] {
                    current[r["role"]] = [r["roster"], r["roster_enrolled"], r["roster_certified"], r["learners"], r["certified"]]
                }
                let total = current.values.reduce([0, 0, 0, 0, 0]) { a, b in zip(a, b).map(+) }
                out.append(.init(
                    day: day, roster: total[0], rosterEnrolled: total[1], rosterCertified: total[2], learners: total[3],
                    certified: total[4]))
            }
            return out
        }
    }
}
