public import Foundation
import GRDB
public import Merge

/// A release manifest as the store keeps it: exact signed bytes, never re-encoded.
public struct StoredRelease: Sendable, Equatable {
    public var version: UInt64
    public var manifest: Data
    public var signatures: Data
    public var installed: Bool
}

extension NodeStore {
    /// Remembers a verified release being fetched, so a restart resumes it before the hub offers
    /// it again. Replaces any other release being fetched (only the newest matters).
    public func stageRelease(version: UInt64, manifest: Data, signatures: Data) throws {
        let at = now()
        try pool.write { db in
            try db.execute(sql: "DELETE FROM release_manifest WHERE state = 'fetching'")
            try db.execute(
                sql: """
                    INSERT OR IGNORE INTO release_manifest (version, manifest, signatures, state, received_at)
                    VALUES (?, ?, ?, 'fetching', ?)
                    """, arguments: [Int64(version), manifest, signatures, at])
        }
    }

    /// The installed release's manifest, if it came as a signed release.
    public func installedRelease() throws -> StoredRelease? { try release(state: "installed") }

    /// The release being fetched, if any.
    public func stagedRelease() throws -> StoredRelease? { try release(state: "fetching") }

    private func release(state: String) throws -> StoredRelease? {
        try pool.read { db in
            try Row.fetchOne(
                db, sql: "SELECT version, manifest, signatures FROM release_manifest WHERE state = ? ORDER BY version DESC LIMIT 1",
                arguments: [state]
            ).map { r in
                StoredRelease(
                    version: UInt64(r["version"] as Int64), manifest: r["manifest"], signatures: r["signatures"],
                    installed: state == "installed")
            }
        }
    }

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
}

extension NodeStore {
    /// The province of an official commune code (nil if the code is unknown).
    public func provinceOf(commune: Int) throws -> Int? {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT province_code FROM commune WHERE code = ?", arguments: [commune]) }
    }
}

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
