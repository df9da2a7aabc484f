import GRDB

extension NodeStore {
    /// Row count of a replicated table, for tests and reports.
    public func attemptsCountForTests(_ table: String) throws -> Int {
        let allowed = ["learner", "enrollment", "progress", "attempt", "certificate", "batch", "quarantine"]
        precondition(allowed.contains(table), "not a countable table")
        return try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM \(table)") ?? 0 }
    }
}

extension NodeStore {
    /// Leaves the database as a migration that wiped the derived facts leaves it when the process
    /// dies before the rebuild: facts and totals empty, the rebuild still owed. For the test that
    /// the next open does the rebuild.
    public func wipeFactsAsAnInterruptedMigrationForTests() throws {
        try pool.write { db in
            try db.execute(sql: """
                DELETE FROM learner_fact;
                UPDATE commune_totals SET learners = 0, enrolled = 0, certified = 0, unbacked_certificates = 0;
                UPDATE commune_course_totals SET enrolled = 0, completed = 0;
                DELETE FROM commune_role_totals;
                UPDATE node SET facts_rebuild_needed = 1;
                """)
        }
    }
}
