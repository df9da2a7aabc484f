import Foundation
import WebSupport
import Merge
import Model
public import Store
import Synchronization

/// The figures a page shows for one unit (nation, province, commune, or a role or course in it).
public struct PageFigures: Codable, Equatable, Sendable {
    /// People on the roster: those who must train (the denominator).
    public var roster: Int
    /// Roster members enrolled in a course, and certified (the numerator).
    public var enrolled: Int
    public var certified: Int
    /// certified ÷ roster, 0 without a roster; rounded to 4 decimals as `hub report --format json`'s
    /// `certifiedShare`.
    public var certifiedRate: Double
    public var meets2025: Bool
    public var meets2026: Bool
    /// Learners on no roster and how many of them are certified: shown apart, never in the rate.
    public var offRoster: Int
    public var offRosterCertified: Int
}

/// A row of a breakdown table (by role, by course).
public struct BreakdownRow: Codable, Equatable, Sendable {
    public var key: String
    public var label: String
    public var figures: PageFigures
}

/// A child unit in a drill-down table: a province on the national page, a commune on a province's.
public struct UnitRow: Codable, Equatable, Sendable {
    public var code: Int
    public var name: String
    public var figures: PageFigures
    /// Province rows: enrolled sites and stale ones. Commune rows: 1/0 and whether it is stale.
    public var sites: Int
    public var staleSites: Int
    /// Commune rows: when its site was last heard from (ms since the epoch).
    public var lastHeardAt: Int64?
}

/// One person on a commune's roster as the page shows them: personal data (a name), so every view
/// and download of it is audit-logged and never cached. Neither national ID nor learner id.
public struct MemberRow: Codable, Equatable, Sendable {
    public var fullName: String
    public var role: String
    public var unit: String
    /// `not_started`, `enrolled` or `certified`.
    public var stage: String
}

/// Everything one page shows; the HTML, CSV and JSON of a page are renderings of this value, so a
/// download holds exactly what the page shows.
public struct Page: Codable, Equatable, Sendable {
    public enum Level: String, Codable, Sendable { case nation, province, commune }
    public var level: Level
    public var code: Int
    public var name: String
    /// The province holding a commune (for the breadcrumb); nil elsewhere.
    public var provinceCode: Int?
    public var provinceName: String?
    public var generatedAt: Int64
    public var staleAfterSeconds: Int64
    public var figures: PageFigures
    public var byRole: [BreakdownRow]
    public var byCourse: [BreakdownRow]
    /// Provinces (nation) or communes (province); empty on a commune page.
    public var units: [UnitRow]
    /// Day by day (yyyy-MM-dd, Vietnam's calendar), from the hub's daily snapshots.
    public var trend: [TrendPoint]
    /// Commune page only: when its site was last heard, and whether it is stale.
    public var lastHeardAt: Int64?
    public var stale: Bool?
    /// Commune page only: the people on its roster — personal data.
    public var members: [MemberRow]?
}

/// Where pages come from: the one place that maps the store's national report (the same
/// `NodeStore.nationalReport` that `hocvu hub report` prints) onto pages, so the dashboard's
/// figures are the CLI's.
struct PageBuilder: Sendable {
    struct CommuneUnit: Sendable {
        let name: String
        let province: Int
    }

    let store: NodeStore
    /// The 3,321 official communes (compiled in), so a commune with no activity still has a page.
    let communes: [Int: CommuneUnit]

    init(store: NodeStore) throws {
        self.store = store
        var communes = [Int: CommuneUnit]()
        for p in try AdminUnits.bundled().provinces {
            for c in p.communes { communes[c.code] = CommuneUnit(name: c.name, province: p.code) }
        }
        self.communes = communes
    }

    /// The province of a commune, nil for no commune.
    func province(ofCommune code: Int) -> Int? { communes[code]?.province }

    static let vietnamese = Locale(identifier: "vi_VN")

    /// Vietnamese alphabetical order (ICU's collation for vi: Đ after D, tones after the bare letter).
    static func inVietnameseOrder(_ a: String, _ b: String) -> Bool {
        a.compare(b, options: [], range: nil, locale: vietnamese) == .orderedAscending
    }

    /// The national report, computed at most once a second however many viewers ask, and by one
    /// viewer at a time: when it is older than a second, the first request recomputes it (about
    /// 0.1 s at national scale, BENCHMARKS.md) while every other request is served the last one.
    /// Without that, twenty viewers whose reports expired together computed twenty reports at once
    /// on a 2-core hub, and every page waited. A page may so lag the database by a second or two
    /// (its "số liệu lúc" time says when the figures were read).
    let cache = ReportCache()

    func report() throws -> NationalReport {
        let now = ContinuousClock.now
        enum Plan { case use(NationalReport), compute }
        let plan: Plan = cache.state.withLock { s in
            if let last = s.latest, now - last.at < .seconds(1) || s.refreshing { return .use(last.report) }
            s.refreshing = true
            return .compute
        }
        if case .use(let report) = plan { return report }
        defer { cache.state.withLock { $0.refreshing = false } }
        let report = try store.nationalReport()
        cache.state.withLock { $0.latest = (ContinuousClock.now, report) }
        return report
    }

    static func figures(_ f: NationalReport.Figures) -> PageFigures {
        PageFigures(
            roster: f.roster, enrolled: f.rosterEnrolled, certified: f.rosterCertified,
            certifiedRate: rounded(f.certifiedShare), meets2025: f.status(of: NationalReport.targets[0]) == .met,
            meets2026: f.status(of: NationalReport.targets[1]) == .met, offRoster: f.offRoster, offRosterCertified: f.offRosterCertified)
    }

    static func rounded(_ x: Double) -> Double { (x * 10_000).rounded() / 10_000 }

    static func figures(_ r: NationalReport.RoleFigures) -> PageFigures {
        let share = r.certifiedShare
        return PageFigures(
            roster: r.roster, enrolled: r.rosterEnrolled, certified: r.rosterCertified, certifiedRate: rounded(share),
            meets2025: r.roster > 0 && share >= NationalReport.targets[0].share,
            meets2026: r.roster > 0 && share >= NationalReport.targets[1].share, offRoster: r.offRoster,
            offRosterCertified: r.offRosterCertified)
    }

    /// Every role, in the report's order of the enum (roles with nobody show zeros).
    static func roles(_ f: NationalReport.Figures) -> [BreakdownRow] {
        Role.allCases.map { role in
            BreakdownRow(key: role.rawValue, label: Format.roleLabels[role.rawValue] ?? role.rawValue, figures: figures(f.byRole[role.rawValue] ?? .init()))
        }
    }

    /// Completions per course (titles from the installed release); a course's "certified" column is
    /// its completions, its share is of the unit's roster.
    static func courses(_ f: NationalReport.Figures, _ r: NationalReport) -> [BreakdownRow] {
        let titles = Dictionary(r.courses.map { ($0.id, $0.title) }, uniquingKeysWith: { a, _ in a })
        let ids = Set(r.courses.map(\.id)).union(f.completedByCourse.keys)
        return ids.sorted().map { id in
            let done = f.completedByCourse[id] ?? 0
            let share = f.roster == 0 ? 0 : Double(done) / Double(f.roster)
            return BreakdownRow(
                key: id, label: titles[id] ?? id,
                figures: PageFigures(
                    roster: f.roster, enrolled: 0, certified: done, certifiedRate: rounded(share),
                    meets2025: f.roster > 0 && share >= NationalReport.targets[0].share,
                    meets2026: f.roster > 0 && share >= NationalReport.targets[1].share, offRoster: 0, offRosterCertified: 0))
        }
    }

    func nation(_ r: NationalReport) throws -> Page {
        Page(
            level: .nation, code: 0, name: "Toàn quốc", generatedAt: r.generatedAt, staleAfterSeconds: r.staleAfter.seconds,
            figures: Self.figures(r.national), byRole: Self.roles(r.national), byCourse: Self.courses(r.national, r),
            units: r.provinces.map {
                UnitRow(code: $0.code, name: $0.name, figures: Self.figures($0.figures), sites: $0.sites, staleSites: $0.staleSites)
            }, trend: try store.trend(.nation))
    }

    /// Nil when `code` is no province.
    func province(_ code: Int, _ r: NationalReport) throws -> Page? {
        guard let p = r.province(code) else { return nil }
        let communes = r.communes.filter { $0.provinceCode == code }
        return Page(
            level: .province, code: p.code, name: p.name, generatedAt: r.generatedAt, staleAfterSeconds: r.staleAfter.seconds,
            figures: Self.figures(p.figures), byRole: Self.roles(p.figures), byCourse: Self.courses(p.figures, r),
            units: communes.map {
                UnitRow(
                    code: $0.code, name: $0.name, figures: Self.figures($0.figures), sites: $0.enrolledSite ? 1 : 0,
                    staleSites: $0.stale ? 1 : 0, lastHeardAt: $0.lastHeardAt)
            }, trend: try store.trend(.province(code)))
    }

    /// Nil when `code` is no commune. Its roster (personal data) is read only here.
    func commune(_ code: Int, _ r: NationalReport) throws -> Page? {
        guard let unit = communes[code] else { return nil }
        let province = r.province(unit.province)
        let c = r.commune(code)
        let f = c?.figures ?? NationalReport.Figures()
        // In Vietnamese alphabetical order (Đ after D, not after Z as SQLite's byte order has it).
        let members = try store.rosterMembers(commune: code).map {
            MemberRow(fullName: $0.fullName, role: $0.role.rawValue, unit: $0.unit, stage: $0.stage.rawValue)
        }.sorted { Self.inVietnameseOrder($0.fullName, $1.fullName) }
        return Page(
            level: .commune, code: code, name: c?.name ?? unit.name, provinceCode: unit.province, provinceName: province?.name,
            generatedAt: r.generatedAt, staleAfterSeconds: r.staleAfter.seconds, figures: Self.figures(f), byRole: Self.roles(f),
            byCourse: Self.courses(f, r), units: [], trend: try store.trend(.commune(code)), lastHeardAt: c?.lastHeardAt,
            stale: c?.stale ?? false, members: members)
    }
}

/// The last national report and when it was computed (``PageBuilder/report()``).
final class ReportCache: Sendable {
    struct State {
        var latest: (at: ContinuousClock.Instant, report: NationalReport)?
        /// A request is computing the next report; the others use `latest` meanwhile.
        var refreshing = false
    }
    let state = Mutex(State())
}
