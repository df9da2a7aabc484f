import Foundation
import GRDB

/// One person the dashboard lists on a commune's page: personal data (a name), so every page and
/// download that shows it is audit-logged and never cached. The national ID is never part of it.
public struct CommuneMember: Codable, Equatable, Sendable {
    public var fullName: String
    /// The role's code (`civil_servant`, …), nil when unknown.
    public var role: String?
    public var unit: String?
    public var certified: Bool
}

extension NodeStore {
    /// Hub: the people of commune `code`, by name. Until the roster lands this lists the learners
    /// whose home is the commune (the dashboard maps it in one place: `PageBuilder`).
    public func communeMembers(_ code: Int) throws -> [CommuneMember] {
        try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT l.full_name, l.role, l.unit, coalesce(f.certified, 0) AS certified
                    FROM learner l LEFT JOIN learner_fact f ON f.learner_id = l.learner_id
                    WHERE l.home_commune = ? ORDER BY l.full_name, l.learner_id
                    """, arguments: [code]
            ).map { CommuneMember(fullName: $0["full_name"] ?? "", role: $0["role"], unit: $0["unit"], certified: $0["certified"]) }
        }
    }
}
