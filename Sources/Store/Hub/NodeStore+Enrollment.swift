public import Foundation
import GRDB
import Merge
import Model

/// A site as the hub knows it: its commune and its two public keys.
public struct Enrollment: Equatable, Sendable {
    public let communeCode: Int
    public let identityKey: Data
    public let transportKey: Data
    public let enrolledAt: Int64
    public let revokedAt: Int64?
    public let lastHeardAt: Int64?

    public var isRevoked: Bool { revokedAt != nil }
}

extension NodeStore {
    /// Hub: enrolls the site of `communeCode` with its identity (Ed25519) and transport (CURVE) keys.
    public func enroll(communeCode: Int, identityKey: Data, transportKey: Data) throws {
        guard identityKey.count == 32 else { throw StoreError.badKey("identity key") }
        guard transportKey.count == 32 else { throw StoreError.badKey("transport key") }
        guard validatorIndex.communes.contains(communeCode) else { throw StoreError.unknownCommune(communeCode) }
        let at = now()
        try pool.write { db in
            if let existing = try Row.fetchOne(
                db, sql: "SELECT revoked_at FROM enrolled_site WHERE commune_code = ?", arguments: [communeCode])
            {
                guard (existing["revoked_at"] as Int64?) != nil else { throw StoreError.alreadyEnrolled(communeCode) }
                try db.execute(sql: "DELETE FROM enrolled_site WHERE commune_code = ?", arguments: [communeCode])
            }
            do {
                try db.execute(
                    sql: """
                        INSERT INTO enrolled_site (commune_code, identity_key, transport_key, enrolled_at)
                        VALUES (?, ?, ?, ?)
                        """, arguments: [communeCode, identityKey, transportKey, at])
            } catch let e as DatabaseError where e.resultCode == .SQLITE_CONSTRAINT {
                throw StoreError.keyInUse
            }
        }
    }

    /// Hub: revokes the site of `communeCode`. Its keys are refused from now on.
    public func revoke(communeCode: Int) throws {
        let at = now()
        try pool.write { db in
            try db.execute(
                sql: "UPDATE enrolled_site SET revoked_at = coalesce(revoked_at, ?) WHERE commune_code = ?",
                arguments: [at, communeCode])
            guard db.changesCount == 1 else { throw StoreError.notEnrolled(communeCode) }
        }
    }

    /// Every enrollment, revoked ones included.
    public func enrollments() throws -> [Enrollment] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM enrolled_site ORDER BY commune_code").map {
                Enrollment(
                    communeCode: $0["commune_code"], identityKey: $0["identity_key"], transportKey: $0["transport_key"],
                    enrolledAt: $0["enrolled_at"], revokedAt: $0["revoked_at"], lastHeardAt: $0["last_heard_at"])
            }
        }
    }

    /// Hub: records that these communes were heard from now (a fact for staleness reports).
    public func markHeard(_ communes: Set<Int>) throws {
        guard !communes.isEmpty else { return }
        let at = now()
        try pool.write { db in try Self.markHeard(db, communes, at: at) }
    }

    static func markHeard(_ db: Database, _ communes: Set<Int>, at: Int64) throws {
        for c in communes {
            try db.cachedStatement(sql: "UPDATE enrolled_site SET last_heard_at = ? WHERE commune_code = ?").execute(arguments: [at, c])
        }
    }

    /// A number that changes whenever another connection commits: lets a daemon notice an
    /// enrollment change made by the CLI without polling tables.
    public func dataVersion() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "PRAGMA data_version") ?? 0 }
    }
}

extension NodeStore {
    /// Hub on a shared database (docs/multi-hub.md): makes this store's enrollments exactly those of
    /// the shared log, the one place they are changed, keeping each site's last-heard time here. A
    /// row whose keys or enrollment time differ is replaced; revocations are copied.
    /// - Returns: whether anything changed.
    @discardableResult
    public func mirrorEnrollments(_ shared: [Enrollment]) throws -> Bool {
        let wanted = Dictionary(shared.map { ($0.communeCode, $0) }, uniquingKeysWith: { a, _ in a })
        return try pool.write { db in
            var changed = false
            var held = [Int: Enrollment]()
            for r in try Row.fetchAll(db, sql: "SELECT * FROM enrolled_site") {
                let e = Enrollment(
                    communeCode: r["commune_code"], identityKey: r["identity_key"], transportKey: r["transport_key"],
                    enrolledAt: r["enrolled_at"], revokedAt: r["revoked_at"], lastHeardAt: nil)
                if let w = wanted[e.communeCode], w.identityKey == e.identityKey, w.transportKey == e.transportKey,
                   w.enrolledAt == e.enrolledAt
                {
                    held[e.communeCode] = e
                } else {
                    try db.execute(sql: "DELETE FROM enrolled_site WHERE commune_code = ?", arguments: [e.communeCode])
                    changed = true
                }
            }
            for w in wanted.values.sorted(by: { $0.communeCode < $1.communeCode }) {
                if let h = held[w.communeCode] {
                    guard h.revokedAt != w.revokedAt else { continue }
                    try db.execute(
                        sql: "UPDATE enrolled_site SET revoked_at = ? WHERE commune_code = ?", arguments: [w.revokedAt, w.communeCode])
                } else {
                    try db.execute(
                        sql: """
                            INSERT INTO enrolled_site (commune_code, identity_key, transport_key, enrolled_at, revoked_at)
                            VALUES (?, ?, ?, ?, ?)
                            """, arguments: [w.communeCode, w.identityKey, w.transportKey, w.enrolledAt, w.revokedAt])
                }
                changed = true
            }
            return changed
        }
    }
}

extension Enrollment {
    /// An enrollment as the shared log holds it (it keeps no last-heard time).
    public init(communeCode: Int, identityKey: Data, transportKey: Data, enrolledAt: Int64, revokedAt: Int64?) {
        self.init(
            communeCode: communeCode, identityKey: identityKey, transportKey: transportKey, enrolledAt: enrolledAt,
            revokedAt: revokedAt, lastHeardAt: nil)
    }
}
