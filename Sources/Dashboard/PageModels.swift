import Foundation
import Merge
import Model
public import Store

/// The figures a page shows for one unit (nation, province, commune). Encoded as the JSON download.
public struct PageFigures: Codable, Equatable, Sendable {
    /// People who must train (the denominator).
    public var roster: Int
    public var enrolled: Int
    public var certified: Int
    /// certified ÷ roster, 0 when the roster is empty; rounded to 4 decimals as `hub report --format json`.
    public var certifiedRate: Double
    public var meets2025: Bool
    public var meets2026: Bool
}

/// A row of a breakdown table (by role, by course).
public struct BreakdownRow: Codable, Equatable, Sendable {
    public var key: String
    public var label: String
    public var figures: PageFigures
}

/// A point of the trend chart: a day (days since 1970-01-01, Vietnam's calendar) and the share.
public struct TrendPoint: Codable, Equatable, Sendable {
    public var day: Int
    public var certifiedRate: Double
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
    public var trend: [TrendPoint]
    /// Commune page only: whether it has an enrolled site, when it was last heard, stale.
    public var lastHeardAt: Int64?
    public var stale: Bool?
    /// Commune page only: the people on its roster — personal data.
    public var members: [CommuneMember]?
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

    static let roleLabels: [String: String] = [
        Role.nationalAssemblyDeputy.rawValue: "Đại biểu Quốc hội",
        Role.provincialCouncilDelegate.rawValue: "Đại biểu HĐND cấp tỉnh",
        Role.communeCouncilDelegate.rawValue: "Đại biểu HĐND cấp xã",
        Role.civilServant.rawValue: "Công chức, viên chức",
        Role.other.rawValue: "Khác",
    ]

    func report() throws -> NationalReport { try store.nationalReport() }

    static func figures(_ f: NationalReport.Figures) -> PageFigures {
        PageFigures(
            roster: f.learners, enrolled: f.enrolled, certified: f.certified,
            certifiedRate: (f.certifiedRate * 10_000).rounded() / 10_000, meets2025: f.meets2025, meets2026: f.meets2026)
    }

    /// Completions per course, as rows (a course's "certified" is its completions).
    static func courses(_ f: NationalReport.Figures) -> [BreakdownRow] {
        f.completedByCourse.sorted { $0.key < $1.key }.map { id, done in
            let rate = f.learners == 0 ? 0 : Double(done) / Double(f.learners)
            return BreakdownRow(
                key: id, label: id,
                figures: PageFigures(
                    roster: f.learners, enrolled: 0, certified: done, certifiedRate: (rate * 10_000).rounded() / 10_000,
                    meets2025: rate >= NationalReport.target2025, meets2026: rate >= NationalReport.target2026))
        }
    }

    func nation(_ r: NationalReport) -> Page {
        Page(
            level: .nation, code: 0, name: "Toàn quốc", generatedAt: r.generatedAt, staleAfterSeconds: r.staleAfterSeconds,
            figures: Self.figures(r.national), byRole: [], byCourse: Self.courses(r.national),
            units: r.provinces.map {
                UnitRow(code: $0.code, name: $0.name, figures: Self.figures($0.figures), sites: $0.sites, staleSites: $0.staleSites)
            }, trend: [])
    }

    /// Nil when `code` is no province.
    func province(_ code: Int, _ r: NationalReport) -> Page? {
        guard let p = r.provinces.first(where: { $0.code == code }) else { return nil }
        let communes = r.communes.filter { $0.provinceCode == code }
        return Page(
            level: .province, code: p.code, name: p.name, generatedAt: r.generatedAt, staleAfterSeconds: r.staleAfterSeconds,
            figures: Self.figures(p.figures), byRole: [], byCourse: Self.courses(p.figures),
            units: communes.map {
                UnitRow(
                    code: $0.code, name: $0.name, figures: Self.figures($0.figures), sites: $0.enrolledSite ? 1 : 0,
                    staleSites: $0.stale ? 1 : 0, lastHeardAt: $0.lastHeardAt)
            }, trend: [])
    }

    /// Nil when `code` is no commune. `members` are fetched only here (personal data).
    func commune(_ code: Int, _ r: NationalReport, withMembers: Bool) throws -> Page? {
        guard let unit = communes[code] else { return nil }
        let province = r.provinces.first { $0.code == unit.province }
        let c = r.communes.first { $0.code == code }
        let f = c?.figures ?? NationalReport.Figures()
        return Page(
            level: .commune, code: code, name: unit.name, provinceCode: unit.province, provinceName: province?.name,
            generatedAt: r.generatedAt, staleAfterSeconds: r.staleAfterSeconds, figures: Self.figures(f), byRole: [],
            byCourse: Self.courses(f), units: [], trend: [], lastHeardAt: c?.lastHeardAt, stale: c?.stale ?? false,
            members: withMembers ? try store.communeMembers(code) : nil)
    }
}
