public import Foundation
import GRDB

/// Where the programme stands: per commune, per province and nationally, against the targets.
///
/// Computed from the commune totals kept in the merge transaction and from the sites' last-heard
/// times (facts), so it costs a few thousand rows however many results exist.
public struct NationalReport: Codable, Equatable, Sendable {
    public static let target2025 = 0.40
    public static let target2026 = 1.00

    public struct Figures: Codable, Equatable, Sendable {
        public var learners = 0
        public var enrolled = 0
        public var certified = 0
        /// Learners holding a certificate without completion evidence at the hub: flagged, not
        /// counted in `certified` (a site's claim alone is not evidence).
        public var unbackedCertificates = 0
        /// Course id → learners who completed it.
        public var completedByCourse: [String: Int] = [:]
        public var certifiedRate: Double { learners == 0 ? 0 : Double(certified) / Double(learners) }
        public var meets2025: Bool { learners > 0 && certifiedRate >= NationalReport.target2025 }
        public var meets2026: Bool { learners > 0 && certifiedRate >= NationalReport.target2026 }

        mutating func add(_ o: Figures) {
            learners += o.learners
            enrolled += o.enrolled
            certified += o.certified
            unbackedCertificates += o.unbackedCertificates
            completedByCourse.merge(o.completedByCourse, uniquingKeysWith: +)
        }

        enum CodingKeys: String, CodingKey {
            case learners, enrolled, certified, unbackedCertificates, completedByCourse, certifiedRate, meets2025, meets2026
        }
        public init() {}
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            learners = try c.decode(Int.self, forKey: .learners)
            enrolled = try c.decode(Int.self, forKey: .enrolled)
            certified = try c.decode(Int.self, forKey: .certified)
            unbackedCertificates = try c.decodeIfPresent(Int.self, forKey: .unbackedCertificates) ?? 0
            completedByCourse = try c.decode([String: Int].self, forKey: .completedByCourse)
        }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(learners, forKey: .learners)
            try c.encode(enrolled, forKey: .enrolled)
            try c.encode(certified, forKey: .certified)
            try c.encode(unbackedCertificates, forKey: .unbackedCertificates)
            try c.encode(completedByCourse, forKey: .completedByCourse)
            try c.encode((certifiedRate * 10_000).rounded() / 10_000, forKey: .certifiedRate)
            try c.encode(meets2025, forKey: .meets2025)
            try c.encode(meets2026, forKey: .meets2026)
        }
    }

    public struct Commune: Codable, Equatable, Sendable {
        public var code: Int
        public var name: String
        public var provinceCode: Int
        public var enrolledSite: Bool
        /// Milliseconds since the Unix epoch; nil if never heard from.
        public var lastHeardAt: Int64?
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

    public var generatedAt: Int64
    public var staleAfterSeconds: Int64

    /// The one definition of a **stale** site, used by the report, `hocvu status` and the metrics:
    /// not heard from (any message, not only an upload) for 3 days — longer than a weekend with the
    /// office PC switched off, short enough to act on within the week.
    public static let defaultStaleAfterSeconds: Int64 = 3 * 86_400
    public var national: Figures
    public var provinces: [Province]
    /// Communes with an enrolled site or with learners.
    public var communes: [Commune]
}

extension NodeStore {
    /// Builds the report. A site is **stale** when it has not been heard from for `staleAfter`
    /// seconds (or never).
    public func nationalReport(staleAfter: Int64 = NationalReport.defaultStaleAfterSeconds) throws -> NationalReport {
        let now = now()
        return try pool.read { db in
            var courses = [Int: [String: Int]]()
            for r in try Row.fetchAll(db, sql: "SELECT commune_code, course_id, completed FROM commune_course_totals WHERE completed > 0") {
                courses[r["commune_code"], default: [:]][r["course_id"]] = r["completed"]
            }
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT c.code, c.name, c.province_code, t.learners, t.enrolled, t.certified, t.unbacked_certificates,
                      e.commune_code IS NOT NULL AND e.revoked_at IS NULL AS enrolled_site, e.last_heard_at
                    FROM commune c
                    LEFT JOIN commune_totals t ON t.commune_code = c.code
                    LEFT JOIN enrolled_site e ON e.commune_code = c.code
                    WHERE t.learners > 0 OR (e.commune_code IS NOT NULL AND e.revoked_at IS NULL)
                    ORDER BY c.province_code, c.code
                    """)
            var communes = [NationalReport.Commune]()
            for r in rows {
                var f = NationalReport.Figures()
                f.learners = r["learners"] ?? 0
                f.enrolled = r["enrolled"] ?? 0
                f.certified = r["certified"] ?? 0
                f.unbackedCertificates = r["unbacked_certificates"] ?? 0
                f.completedByCourse = courses[r["code"]] ?? [:]
                let heard: Int64? = r["last_heard_at"]
                let site: Bool = r["enrolled_site"]
                communes.append(.init(
                    code: r["code"], name: r["name"], provinceCode: r["province_code"], enrolledSite: site,
                    lastHeardAt: heard, stale: site && (heard.map { now - $0 > staleAfter * 1_000 } ?? true), figures: f))
            }
            var provinces = [NationalReport.Province]()
            var national = NationalReport.Figures()
            for p in try Row.fetchAll(db, sql: "SELECT code, name FROM province ORDER BY code") {
                let mine = communes.filter { $0.provinceCode == p["code"] }
                var f = NationalReport.Figures()
                for c in mine { f.add(c.figures) }
                national.add(f)
                provinces.append(.init(
                    code: p["code"], name: p["name"], sites: mine.filter(\.enrolledSite).count,
                    staleSites: mine.filter(\.stale).count, figures: f))
            }
            return NationalReport(
                generatedAt: now, staleAfterSeconds: staleAfter, national: national, provinces: provinces,
                communes: communes)
        }
    }
}
