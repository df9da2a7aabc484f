import GRDB
public import Merge

/// Facts for `hocvu status`, read from the database (not from the outcome of a request).
public struct StoreFacts: Sendable, Codable, Equatable {
    /// Own batches the peer has not acknowledged holding.
    public var unacknowledgedBatches: Int
    public var pendingChanges: Int
    public var openQuarantine: Int
    public var releaseVersion: UInt64?
}

extension NodeStore {
    /// - Parameter acknowledged: what the hub has acknowledged holding (the site's cursor).
    public func facts(acknowledged: VersionVector) throws -> StoreFacts {
        let mine = node
        let origins = acknowledged.entries.filter { $0.key.node == mine }
        return try pool.read { db in
            var unacked = 0
            for row in try Row.fetchAll(
                db, sql: "SELECT o.epoch, count(*) AS n, o.origin_no FROM batch b JOIN origin o USING (origin_no) WHERE o.node_id = ? AND o.quarantine_reason IS NULL GROUP BY o.origin_no",
                arguments: [mine.bytes])
            {
                let epoch = UInt64(bitPattern: row["epoch"] as Int64)
                let acked = origins.first { $0.key.epoch == epoch }?.value ?? 0
                unacked += try Int.fetchOne(
                    db, sql: "SELECT count(*) FROM batch WHERE origin_no = ? AND last_seq > ?",
                    arguments: [row["origin_no"] as Int64, Int64(acked)]) ?? 0
            }
            return StoreFacts(
                unacknowledgedBatches: unacked,
                pendingChanges: try Int.fetchOne(db, sql: "SELECT count(*) FROM pending_change") ?? 0,
                openQuarantine: try Int.fetchOne(db, sql: "SELECT count(*) FROM quarantine WHERE resolved_at IS NULL") ?? 0,
                releaseVersion: try Int64.fetchOne(db, sql: "SELECT version FROM curriculum_release").map(UInt64.init))
        }
    }
}
