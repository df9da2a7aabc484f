public import Foundation
import GRDB

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
}
