import Foundation
public import Merge
import GRDB

/// One official on a roster, with where they stand: what a commune operator (`hocvu site roster`)
/// and the dashboard show. Personal data: shown to those entitled, never logged.
public struct RosterMember: Sendable, Equatable, Codable {
    public var learnerID: String
    public var fullName: String
    public var role: Role
    public var unit: String
    public var commune: Int
    /// Registered as a learner anywhere (a learner record with this national ID exists here).
    public var registered: Bool
    /// Enrolled in at least one course.
    public var enrolled: Bool
    /// Holds a certificate backed by completion evidence (the programme's rule).
    public var certified: Bool

    /// "not started", "enrolled" or "certified": the roster's one progress word.
    public var stage: Stage { certified ? .certified : enrolled ? .enrolled : .notStarted }

    public enum Stage: String, Sendable, Codable, CaseIterable {
        case notStarted = "not_started"
        case enrolled
        case certified
    }
}

extension NodeStore {
    /// The active members of `commune`'s roster (a site holds only its own), by name.
    public func rosterMembers(commune: Int) throws -> [RosterMember] {
        try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT r.learner_id, r.full_name, r.role, r.unit, r.commune_code,
                      l.learner_id IS NOT NULL AS registered,
                      coalesce(f.certified, 0) AS certified, coalesce(f.courses, '') AS courses
                    FROM roster r
                    LEFT JOIN learner l ON l.learner_id = r.learner_id
                    LEFT JOIN learner_fact f ON f.learner_id = r.learner_id
                    WHERE r.commune_code = ? AND r.active = 1
                    ORDER BY r.full_name, r.learner_id
                    """, arguments: [commune]
            ).map { row in
                let courses: String = row["courses"]
                return RosterMember(
                    learnerID: row["learner_id"], fullName: row["full_name"],
                    role: Role(rawValue: row["role"]) ?? .other, unit: row["unit"], commune: row["commune_code"],
                    registered: row["registered"], enrolled: FactKeeper.Fact.decodeCourses(courses).values.contains { $0.enrolled },
                    certified: row["certified"])
            }
        }
    }

    /// Communes holding active roster entries, with their sizes (a site: its own commune only).
    public func rosterCommunes() throws -> [Int: Int] {
        try pool.read { db in
            var out = [Int: Int]()
            for row in try Row.fetchAll(db, sql: "SELECT commune_code, count(*) AS n FROM roster WHERE active = 1 GROUP BY commune_code") {
                out[row["commune_code"]] = row["n"]
            }
            return out
        }
    }
}
