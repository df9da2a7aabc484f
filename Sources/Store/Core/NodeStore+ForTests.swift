import GRDB

extension NodeStore {
    /// Row count of a replicated table, for tests and reports.
    public func attemptsCountForTests(_ table: String) throws -> Int {
        let allowed = ["learner", "enrollment", "progress", "attempt", "certificate", "batch", "quarantine"]
        precondition(allowed.contains(table), "not a countable table")
        return try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM \(table)") ?? 0 }
    }
}
