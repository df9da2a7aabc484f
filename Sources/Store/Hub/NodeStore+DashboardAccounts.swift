import Foundation
import GRDB

/// What a dashboard viewer may see: the whole nation, or one province.
public enum DashboardScope: Equatable, Hashable, Sendable, CustomStringConvertible {
    case national
    case province(Int)

    /// Parses the CLI form: `national` or `province:CODE`.
    public init?(_ text: String) {
        if text == "national" { self = .national; return }
        guard text.hasPrefix("province:"), let code = Int(text.dropFirst("province:".count)), code > 0, code < 1_000 else { return nil }
        self = .province(code)
    }

    public var description: String {
        switch self {
        case .national: "national"
        case .province(let code): "province:\(code)"
        }
    }

    /// True when a viewer of this scope may see `province`'s pages and downloads.
    public func covers(province: Int) -> Bool {
        switch self {
        case .national: true
        case .province(let mine): mine == province
        }
    }
}

/// A dashboard account as the hub stores it (without its password hash).
public struct DashboardUser: Equatable, Sendable {
    public let name: String
    public let scope: DashboardScope
    public let createdAt: Int64
    public let failedAttempts: Int
    /// Milliseconds since the epoch until which sign-in is refused; nil when not locked.
    public let lockedUntil: Int64?
}

/// One line of the dashboard's audit trail.
public struct DashboardAuditEntry: Equatable, Sendable {
    public enum Action: String, Sendable, CaseIterable {
        case signIn = "sign_in", signInRefused = "sign_in_refused", locked, signOut = "sign_out", viewRoster = "view_roster"
    }
    public let at: Int64
    public let user: String
    public let action: Action
    /// What was opened, e.g. `commune:70/html`; never a person's name or national ID.
    public let target: String
}

/// Refusals of account commands, in the operator's terms.
public enum DashboardAccountError: Error, Equatable, CustomStringConvertible {
    case badName(String)
    case unknownProvince(Int)
    case exists(String)
    case notFound(String)
    case badHash

    public var description: String {
        switch self {
        case .badName(let n):
            "user name \(n.debugDescription) is not allowed: 1 to 64 characters of a-z, 0-9, '.', '_' or '-'"
        case .unknownProvince(let c): "province code \(c) is not one of the 34 provinces (see the admin-units list)"
        case .exists(let n): "user \(n) already exists; remove it first to change its password or scope"
        case .notFound(let n): "there is no dashboard user \(n)"
        case .badHash: "the password hash is not an Argon2id string"
        }
    }
}

/// Repeated wrong passwords lock an account for a while: `maxFailures` in a row lock it for
/// `lockMilliseconds`. A pure rule, so the store and the tests apply the same one.
public struct LockoutPolicy: Equatable, Sendable {
    public var maxFailures = 5
    public var lockMilliseconds: Int64 = 15 * 60 * 1_000
    public init() {}

    public func isLocked(_ user: DashboardUser, now: Int64) -> Bool { user.lockedUntil.map { now < $0 } ?? false }
}

extension NodeStore {
    /// The one rule for dashboard user names (also the table's CHECK).
    public static func isValidDashboardUserName(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count) && name.utf8.allSatisfy { c in
            (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x2E || c == 0x5F || c == 0x2D
        }
    }

    /// Hub: adds a dashboard account. `passwordHash` comes from `PasswordHash.hash` (Argon2id).
    public func addDashboardUser(name: String, passwordHash: String, scope: DashboardScope) throws {
        guard Self.isValidDashboardUserName(name) else { throw DashboardAccountError.badName(name) }
        guard passwordHash.hasPrefix("$argon2id$") else { throw DashboardAccountError.badHash }
        let at = now()
        try pool.write { db in
            var province: Int?
            if case .province(let code) = scope {
                guard try Int.fetchOne(db, sql: "SELECT 1 FROM province WHERE code = ?", arguments: [code]) != nil else {
                    throw DashboardAccountError.unknownProvince(code)
                }
                province = code
            }
            guard try Int.fetchOne(db, sql: "SELECT 1 FROM dashboard_user WHERE name = ?", arguments: [name]) == nil else {
                throw DashboardAccountError.exists(name)
            }
            try db.execute(
                sql: "INSERT INTO dashboard_user (name, password_hash, province_code, created_at) VALUES (?, ?, ?, ?)",
                arguments: [name, passwordHash, province, at])
        }
    }

    /// Hub: removes a dashboard account. A running dashboard refuses its session at the next request.
    public func removeDashboardUser(name: String) throws {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM dashboard_user WHERE name = ?", arguments: [name])
            guard db.changesCount == 1 else { throw DashboardAccountError.notFound(name) }
        }
    }

    /// Every dashboard account, by name.
    public func dashboardUsers() throws -> [DashboardUser] {
        try pool.read { db in try Row.fetchAll(db, sql: "SELECT * FROM dashboard_user ORDER BY name").map(Self.dashboardUser) }
    }

    /// One account and its password hash, or nil.
    public func dashboardUser(named name: String) throws -> (user: DashboardUser, passwordHash: String)? {
        guard Self.isValidDashboardUserName(name) else { return nil }
        return try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM dashboard_user WHERE name = ?", arguments: [name]).map {
                (Self.dashboardUser($0), $0["password_hash"])
            }
        }
    }

    /// Records a wrong password for `name`; at the policy's count the account locks (the count
    /// starts again). Returns true when this failure locked it. Unknown names change nothing.
    @discardableResult
    public func recordDashboardSignInFailure(name: String, policy: LockoutPolicy) throws -> Bool {
        let at = now()
        return try pool.write { db in
            // One statement, so concurrent wrong guesses cannot both read the same count.
            try db.execute(
                sql: """
                    UPDATE dashboard_user SET
                      locked_until = CASE WHEN failed_attempts + 1 >= ? THEN ? ELSE locked_until END,
                      failed_attempts = CASE WHEN failed_attempts + 1 >= ? THEN 0 ELSE failed_attempts + 1 END
                    WHERE name = ?
                    """, arguments: [policy.maxFailures, at + policy.lockMilliseconds, policy.maxFailures, name])
            let locked = try Int64.fetchOne(db, sql: "SELECT locked_until FROM dashboard_user WHERE name = ?", arguments: [name])
            return locked == at + policy.lockMilliseconds
        }
    }

    /// A right password: the failure count starts again.
    public func recordDashboardSignInSuccess(name: String) throws {
        try pool.write { db in
            try db.execute(
                sql: "UPDATE dashboard_user SET failed_attempts = 0, locked_until = NULL WHERE name = ?", arguments: [name])
        }
    }

    /// Appends to the audit trail (its own small transaction, committed before the page is sent).
    public func appendDashboardAudit(user: String, action: DashboardAuditEntry.Action, target: String = "") throws {
        let at = now()
        try pool.write { db in
            try db.execute(
                sql: "INSERT INTO dashboard_audit (at, user_name, action, target) VALUES (?, ?, ?, ?)",
                arguments: [at, user, action.rawValue, target])
        }
    }

    /// The latest `limit` audit entries, newest first.
    public func dashboardAudit(limit: Int = 100) throws -> [DashboardAuditEntry] {
        try pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM dashboard_audit ORDER BY id DESC LIMIT ?", arguments: [max(0, limit)]
            ).compactMap { r in
                guard let action = DashboardAuditEntry.Action(rawValue: r["action"]) else { return nil }
                return DashboardAuditEntry(at: r["at"], user: r["user_name"], action: action, target: r["target"])
            }
        }
    }

    private static func dashboardUser(_ r: Row) -> DashboardUser {
        let province: Int? = r["province_code"]
        return DashboardUser(
            name: r["name"], scope: province.map { .province($0) } ?? .national, createdAt: r["created_at"],
            failedAttempts: r["failed_attempts"], lockedUntil: r["locked_until"])
    }
}
