public import Foundation
public import Merge
import GRDB

/// How long a site may stay silent before it is **stale**: one window, with its unit in the type,
/// used by the report, the dashboard, `hocvu status` and the metrics.
public struct StaleWindow: Sendable, Equatable, Codable {
    public let duration: Duration

    public init(_ duration: Duration) { self.duration = duration }

    /// Not heard from (any message, not only an upload) for 3 days: longer than a weekend with the
    /// office PC switched off, short enough to act on within the week.
    public static let standard = StaleWindow(.seconds(3 * 86_400))

    public var seconds: Int64 { duration.components.seconds }

    /// Whether a site last heard at `lastHeard` (ms since the epoch; nil = never) is stale at `now`.
    public func isStale(lastHeard: Int64?, now: Int64) -> Bool {
        guard let lastHeard else { return true }
        return now.subtractingReportingOverflow(lastHeard).partialValue > seconds.multipliedReportingOverflow(by: 1_000).partialValue
    }

    public init(from decoder: any Decoder) throws {
        duration = .seconds(try decoder.singleValueContainer().decode(Int64.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(seconds)
    }
}

/// Where the programme stands: per commune, per province and nationally, against the targets.
///
/// The rate everywhere is **certified roster members ÷ roster size** (docs/report-format.md):
/// the targets are shares of the officials who must be trained, not of those who showed up.
/// Learners on no roster are counted apart (`offRoster`). Computed from the totals kept in the
/// merge transaction (facts), so it costs a few thousand rows however many results exist.
public struct NationalReport: Codable, Equatable, Sendable {
    /// The JSON schema's version (docs/report-format.md); bumped on any incompatible change.
    public static let schemaVersion = 2
    public static let timeZone = "Asia/Ho_Chi_Minh"

    /// A programme target: by the end of `year`, `share` of each roster certified.
    public struct Target: Codable, Equatable, Sendable {
        public var year: Int
        public var share: Double
    }

    public static let targets = [Target(year: 2025, share: 0.40), Target(year: 2026, share: 1.00)]

    public enum TargetStatus: String, Codable, Sendable {
        case met
        case notMet = "not_met"
        /// No roster: there is nothing to measure against.
        case noRoster = "no_roster"
    }

    /// Counts for one role (or all roles).
    public struct RoleFigures: Codable, Equatable, Sendable {
        public var roster = 0
        public var rosterEnrolled = 0
        public var rosterCertified = 0
        public var learners = 0
        public var certified = 0
        public var offRoster = 0
        public var offRosterCertified = 0

        public init() {}

        public var certifiedShare: Double { roster == 0 ? 0 : Double(rosterCertified) / Double(roster) }

        mutating func add(_ o: Self) {
            roster += o.roster
            rosterEnrolled += o.rosterEnrolled
            rosterCertified += o.rosterCertified
            learners += o.learners
            certified += o.certified
            offRoster += o.offRoster
            offRosterCertified += o.offRosterCertified
        }
    }

    public struct Figures: Codable, Equatable, Sendable {
        /// Officials on the roster (active entries), those enrolled in a course, those certified.
        public var roster = 0
        public var rosterEnrolled = 0
        public var rosterCertified = 0
        /// Learners counted at their home commune (all of them, on a roster or not).
        public var learners = 0
        public var enrolled = 0
        public var certified = 0
        /// Learners on no roster, and how many of them are certified: counted apart, never in the rate.
        public var offRoster = 0
        public var offRosterCertified = 0
        /// Learners holding a certificate without completion evidence at the hub: flagged, not
        /// counted as certified (a site's claim alone is not evidence).
        public var unbackedCertificates = 0
        /// Role (raw value) → its figures.
        public var byRole: [String: RoleFigures] = [:]
        /// Course id → learners who completed it.
        public var completedByCourse: [String: Int] = [:]

        public init() {}

        /// Certified roster members ÷ roster size (0 without a roster).
        public var certifiedShare: Double { roster == 0 ? 0 : Double(rosterCertified) / Double(roster) }

        public func status(of target: Target) -> TargetStatus {
            roster == 0 ? .noRoster : certifiedShare >= target.share ? .met : .notMet
        }

        mutating func add(_ o: Figures) {
            roster += o.roster
            rosterEnrolled += o.rosterEnrolled
            rosterCertified += o.rosterCertified
            learners += o.learners
            enrolled += o.enrolled
            certified += o.certified
            offRoster += o.offRoster
            offRosterCertified += o.offRosterCertified
            unbackedCertificates += o.unbackedCertificates
            byRole.merge(o.byRole) { var a = $0; a.add($1); return a }
            completedByCourse.merge(o.completedByCourse, uniquingKeysWith: +)
        }

        enum CodingKeys: String, CodingKey {
            case roster, rosterEnrolled, rosterCertified, certifiedShare, targets, learners, enrolled, certified
            case offRoster, offRosterCertified, unbackedCertificates, byRole, completedByCourse
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            roster = try c.decode(Int.self, forKey: .roster)
            rosterEnrolled = try c.decode(Int.self, forKey: .rosterEnrolled)
            rosterCertified = try c.decode(Int.self, forKey: .rosterCertified)
            learners = try c.decode(Int.self, forKey: .learners)
            enrolled = try c.decode(Int.self, forKey: .enrolled)
            certified = try c.decode(Int.self, forKey: .certified)
            offRoster = try c.decode(Int.self, forKey: .offRoster)
            offRosterCertified = try c.decode(Int.self, forKey: .offRosterCertified)
            unbackedCertificates = try c.decode(Int.self, forKey: .unbackedCertificates)
            byRole = try c.decode([String: RoleFigures].self, forKey: .byRole)
            completedByCourse = try c.decode([String: Int].self, forKey: .completedByCourse)
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(roster, forKey: .roster)
            try c.encode(rosterEnrolled, forKey: .rosterEnrolled)
            try c.encode(rosterCertified, forKey: .rosterCertified)
            try c.encode((certifiedShare * 10_000).rounded() / 10_000, forKey: .certifiedShare)
            var targets = [String: TargetStatus]()
            for t in NationalReport.targets { targets[String(t.year)] = status(of: t) }
            try c.encode(targets, forKey: .targets)
            try c.encode(learners, forKey: .learners)
            try c.encode(enrolled, forKey: .enrolled)
            try c.encode(certified, forKey: .certified)
            try c.encode(offRoster, forKey: .offRoster)
            try c.encode(offRosterCertified, forKey: .offRosterCertified)
            try c.encode(unbackedCertificates, forKey: .unbackedCertificates)
            try c.encode(byRole, forKey: .byRole)
            try c.encode(completedByCourse, forKey: .completedByCourse)
        }
    }

    public struct Commune: Codable, Equatable, Sendable {
        public var code: Int
        public var name: String
        public var provinceCode: Int
        public var enrolledSite: Bool
        /// Milliseconds since the Unix epoch; nil if never heard from.
        public var lastHeardAt: Int64?
        /// True only for an enrolled site not heard from within the window.
        public var stale: Bool
        public var figures: Figures
    }

    public struct Province: Codable, Equatable, Sendable {
        public var code: Int
        public var name: String
        public var sites: Int
        public var staleSites: Int
        public var figures: Figures
    }

    public struct Course: Codable, Equatable, Sendable {
        public var id: String
        public var title: String
    }

    public var schema = NationalReport.schemaVersion
    public var timeZone = NationalReport.timeZone
    /// Milliseconds since the Unix epoch.
    public var generatedAt: Int64
    public var staleAfter: StaleWindow
    public var targets = NationalReport.targets
    /// The installed release's courses, in curriculum order (titles for `completedByCourse`).
    public var courses: [Course]
    public var national: Figures
    /// All 34 provinces.
    public var provinces: [Province]
    /// All 3,321 communes, those with no activity too (at 0).
    public var communes: [Commune]

    public func province(_ code: Int) -> Province? { provinces.first { $0.code == code } }
    public func commune(_ code: Int) -> Commune? { communes.first { $0.code == code } }
}

extension NodeStore {
    /// Builds the report. A site is **stale** when it has not been heard from within `staleAfter`.
    public func nationalReport(staleAfter: StaleWindow = .standard) throws -> NationalReport {
        let now = now()
        return try pool.read { db in
            var figures = [Int: NationalReport.Figures]()
            for r in try Row.fetchAll(db, sql: "SELECT commune_code, course_id, completed FROM commune_course_totals WHERE completed > 0") {
                figures[r["commune_code"], default: .init()].completedByCourse[r["course_id"]] = r["completed"]
            }
            for r in try Row.fetchAll(
                db, sql: "SELECT commune_code, learners, enrolled, certified, unbacked_certificates FROM commune_totals")
            {
                let code: Int = r["commune_code"]
                figures[code, default: .init()].learners = r["learners"]
                figures[code, default: .init()].enrolled = r["enrolled"]
                figures[code, default: .init()].certified = r["certified"]
                figures[code, default: .init()].unbackedCertificates = r["unbacked_certificates"]
            }
            for r in try Row.fetchAll(db, sql: "SELECT * FROM commune_role_totals") {
                var role = NationalReport.RoleFigures()
                role.roster = r["roster"]
                role.rosterEnrolled = r["roster_enrolled"]
                role.rosterCertified = r["roster_certified"]
                role.learners = r["learners"]
                role.certified = r["certified"]
                role.offRoster = r["off_roster"]
                role.offRosterCertified = r["off_roster_certified"]
                guard role != NationalReport.RoleFigures() else { continue }
                let code: Int = r["commune_code"]
                var f = figures[code, default: .init()]
                f.byRole[r["role"]] = role
                f.roster += role.roster
                f.rosterEnrolled += role.rosterEnrolled
                f.rosterCertified += role.rosterCertified
                f.offRoster += role.offRoster
                f.offRosterCertified += role.offRosterCertified
                figures[code] = f
            }
            var communes = [NationalReport.Commune]()
            for r in try Row.fetchAll(
                db,
                sql: """
                    SELECT c.code, c.name, c.province_code,
                      e.commune_code IS NOT NULL AND e.revoked_at IS NULL AS enrolled_site, e.last_heard_at
                    FROM commune c LEFT JOIN enrolled_site e ON e.commune_code = c.code
                    ORDER BY c.province_code, c.code
                    """)
            {
                let heard: Int64? = r["last_heard_at"]
                let site: Bool = r["enrolled_site"]
                communes.append(.init(
                    code: r["code"], name: r["name"], provinceCode: r["province_code"], enrolledSite: site,
                    lastHeardAt: heard, stale: site && staleAfter.isStale(lastHeard: heard, now: now),
                    figures: figures[r["code"]] ?? .init()))
            }
            var byProvince = [Int: [NationalReport.Commune]]()
            for c in communes { byProvince[c.provinceCode, default: []].append(c) }
            var provinces = [NationalReport.Province]()
            var national = NationalReport.Figures()
            for p in try Row.fetchAll(db, sql: "SELECT code, name FROM province ORDER BY code") {
                let mine = byProvince[p["code"]] ?? []
                var f = NationalReport.Figures()
                for c in mine { f.add(c.figures) }
                national.add(f)
                provinces.append(.init(
                    code: p["code"], name: p["name"], sites: mine.filter(\.enrolledSite).count,
                    staleSites: mine.filter(\.stale).count, figures: f))
            }
            let courses = try Row.fetchAll(db, sql: "SELECT course_id, title FROM course ORDER BY position, course_id").map {
                NationalReport.Course(id: $0["course_id"], title: $0["title"])
            }
            return NationalReport(
                generatedAt: now, staleAfter: staleAfter, courses: courses, national: national, provinces: provinces,
                communes: communes)
        }
    }
}
