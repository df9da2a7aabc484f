import GRDB

/// What course targeting needs to know of a learner or a commune.
extension NodeStore {
    /// A learner's role and home province, for targeting (nil if the learner is unknown here).
    public func learnerTargeting(_ learner: String) throws -> (role: String?, province: Int?)? {
        try pool.read { db in
            try Row.fetchOne(
                db,
                sql: """
                    SELECT l.role, c.province_code FROM learner l LEFT JOIN commune c ON c.code = l.home_commune
                    WHERE l.learner_id = ?
                    """, arguments: [learner]
            ).map { ($0["role"], $0["province_code"]) }
        }
    }

    /// The province of an official commune code (nil if the code is unknown).
    public func provinceOf(commune: Int) throws -> Int? {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT province_code FROM commune WHERE code = ?", arguments: [commune]) }
    }
}
