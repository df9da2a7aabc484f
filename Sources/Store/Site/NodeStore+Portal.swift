public import Foundation
import GRDB
public import Merge
public import Model
import Sodium

/// Who signs in to a site's learner portal (docs/portal.md): an operator (name and password) or a
/// learner (8-digit code and PIN, both set by the operator).
public enum PortalAccountKind: String, Sendable, CaseIterable {
    case `operator`, learner
}

/// A portal account as the site stores it (without its secret).
public struct PortalAccount: Equatable, Sendable {
    public let kind: PortalAccountKind
    /// The operator's name, or the learner's code.
    public let name: String
    public let learnerID: String?
    public let hasSecret: Bool
    public let createdAt: Int64
    public let failedAttempts: Int
    /// Milliseconds since the epoch until which sign-in is refused; nil when not locked.
    public let lockedUntil: Int64?

    public func isLocked(now: Int64) -> Bool { lockedUntil.map { now < $0 } ?? false }
}

/// A learner as the portal shows them. The national ID is for operators' pages only.
public struct PortalLearner: Equatable, Sendable {
    public let learnerID: String
    public let nationalID: String
    public let fullName: String
    public let role: Role?
    public let unit: String
    public let homeCommune: Int?
    /// The sign-in code, once the operator has given the learner one.
    public let code: String?
    public let hasPIN: Bool
}

/// Where a learner stands, as the portal and the API show it: raw facts, read in one transaction.
public struct LearnerProgress: Equatable, Sendable {
    /// Percent per lesson id (lessons never opened are absent).
    public var lessons: [String: Int] = [:]
    public var bestScores: [String: BestScore] = [:]
    public var attempts: [String: Int] = [:]
    public var enrolled: Set<String> = []
    /// Issued (not revoked) certificates: course id → issued at (ms).
    public var certificates: [String: Int64] = [:]
    public var completedCourses: Set<String> = []
}

/// Refusals of portal account and API commands, in the operator's terms.
public enum PortalError: Error, Equatable, CustomStringConvertible {
    case badName(String)
    case exists(String)
    case notFound(String)
    case unknownLearner
    case badHash
    /// A client id sent again with a different request: the first one stands.
    case idReused(String)

    public var description: String {
        switch self {
        case .badName(let n):
            "name \(n.debugDescription) is not allowed: 1 to 64 characters of a-z, 0-9, '.', '_' or '-'"
        case .exists(let n): "\(n) already exists; remove it first"
        case .notFound(let n): "there is no \(n)"
        case .unknownLearner: "no learner with that code or id is registered at this site"
        case .badHash: "the secret's hash is not an Argon2id string"
        case .idReused(let id): "id \(id) was already used for a different request; use a new id for a new write"
        }
    }
}

extension NodeStore {
    // MARK: Accounts

    /// Site: adds an operator account. `passwordHash` comes from `PasswordHash.hash` (Argon2id).
    public func addPortalOperator(name: String, passwordHash: String) throws {
        guard Self.isValidDashboardUserName(name) else { throw PortalError.badName(name) }
        guard passwordHash.hasPrefix("$argon2id$") else { throw PortalError.badHash }
        let at = now()
        try pool.write { db in
            guard try Self.accountRow(db, .operator, name) == nil else { throw PortalError.exists("operator \(name)") }
            try db.execute(
                sql: "INSERT INTO portal_account (kind, name, secret_hash, created_at) VALUES ('operator', ?, ?, ?)",
                arguments: [name, passwordHash, at])
        }
    }

    /// Site: removes an operator account; a running portal refuses its session at the next request.
    public func removePortalOperator(name: String) throws {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM portal_account WHERE kind = 'operator' AND name = ?", arguments: [name])
            guard db.changesCount == 1 else { throw PortalError.notFound("operator \(name)") }
        }
    }

    public func portalOperators() throws -> [PortalAccount] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM portal_account WHERE kind = 'operator' ORDER BY name").map(Self.account)
        }
    }

    /// An account and its secret's hash (nil while a learner has no PIN), or nil.
    public func portalAccount(_ kind: PortalAccountKind, named name: String) throws -> (account: PortalAccount, secretHash: String?)? {
        guard Self.isValidDashboardUserName(name) else { return nil }
        return try pool.read { db in try Self.accountRow(db, kind, name).map { (Self.account($0), $0["secret_hash"]) } }
    }

    /// Sets (or resets) a learner's PIN, giving them a sign-in code first if they have none;
    /// returns the code. A reset also clears a lockout.
    @discardableResult
    public func setLearnerPIN(learnerID: String, pinHash: String) throws -> String {
        guard pinHash.hasPrefix("$argon2id$") else { throw PortalError.badHash }
        let at = now()
        return try pool.write { db in
            guard try Int.fetchOne(db, sql: "SELECT 1 FROM learner WHERE learner_id = ?", arguments: [learnerID]) != nil else {
                throw PortalError.unknownLearner
            }
            if let code = try String.fetchOne(db, sql: "SELECT name FROM portal_account WHERE learner_id = ?", arguments: [learnerID]) {
                try db.execute(
                    sql: "UPDATE portal_account SET secret_hash = ?, failed_attempts = 0, locked_until = NULL WHERE learner_id = ?",
                    arguments: [pinHash, learnerID])
                return code
            }
            // 8 random digits, so a code says nothing about the person; tried again on a collision.
            while true {
                let code = String(format: "%08u", UInt32.random(in: 0..<100_000_000))  // the system's CSPRNG
                guard try Self.accountRow(db, .learner, code) == nil else { continue }
                try db.execute(
                    sql: "INSERT INTO portal_account (kind, name, learner_id, secret_hash, created_at) VALUES ('learner', ?, ?, ?, ?)",
                    arguments: [code, learnerID, pinHash, at])
                return code
            }
        }
    }

    /// Records a wrong secret; at the policy's count the account locks (and the count starts
    /// again). Returns true when this failure locked it. Unknown names change nothing.
    @discardableResult
    public func recordPortalSignInFailure(_ kind: PortalAccountKind, name: String, policy: LockoutPolicy) throws -> Bool {
        let at = now()
        return try pool.write { db in
            // One statement, so concurrent wrong guesses cannot both read the same count.
            try db.execute(
                sql: """
                    UPDATE portal_account SET
                      locked_until = CASE WHEN failed_attempts + 1 >= ? THEN ? ELSE locked_until END,
                      failed_attempts = CASE WHEN failed_attempts + 1 >= ? THEN 0 ELSE failed_attempts + 1 END
                    WHERE kind = ? AND name = ?
                    """, arguments: [policy.maxFailures, at + policy.lockMilliseconds, policy.maxFailures, kind.rawValue, name])
            return try Self.accountRow(db, kind, name)?["locked_until"] == at + policy.lockMilliseconds
        }
    }

    public func recordPortalSignInSuccess(_ kind: PortalAccountKind, name: String) throws {
        try pool.write { db in
            try db.execute(
                sql: "UPDATE portal_account SET failed_attempts = 0, locked_until = NULL WHERE kind = ? AND name = ?",
                arguments: [kind.rawValue, name])
        }
    }

    // MARK: App tokens

    /// Issues an API token to a learning app; returns the token, shown once (only its hash is kept).
    public func addPortalApp(name: String) throws -> String {
        guard Self.isValidDashboardUserName(name) else { throw PortalError.badName(name) }
        let token = Sodium.randomBytes(32).map { String(format: "%02x", $0) }.joined()
        let at = now()
        try pool.write { db in
            guard try Int.fetchOne(db, sql: "SELECT 1 FROM portal_app WHERE name = ?", arguments: [name]) == nil else {
                throw PortalError.exists("app \(name)")
            }
            try db.execute(
                sql: "INSERT INTO portal_app (name, token_hash, created_at) VALUES (?, ?, ?)",
                arguments: [name, Blake2b.hash(Data(token.utf8)), at])
        }
        return token
    }

    public func removePortalApp(name: String) throws {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM portal_app WHERE name = ?", arguments: [name])
            guard db.changesCount == 1 else { throw PortalError.notFound("app \(name)") }
        }
    }

    public func portalApps() throws -> [(name: String, createdAt: Int64)] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT name, created_at FROM portal_app ORDER BY name").map { ($0["name"], $0["created_at"]) }
        }
    }

    /// The app a bearer token belongs to, or nil. Looked up by the token's hash (the table holds no token).
    public func portalApp(token: String) throws -> String? {
        guard token.utf8.count == 64 else { return nil }
        return try pool.read { db in
            try String.fetchOne(db.cachedStatement(sql: "SELECT name FROM portal_app WHERE token_hash = ?"), arguments: [Blake2b.hash(Data(token.utf8))])
        }
    }

    // MARK: Idempotent writes

    /// Records `events` once per (`client`, `clientID`): the events, the journal row and the answer
    /// commit together. A retry with the same request gets the first answer back and records
    /// nothing; the same id with a different request is refused (``PortalError/idReused(_:)``).
    ///
    /// - Parameter respond: makes the answer kept for retries from what recording produced.
    /// - Parameter certify: a course whose certificate is issued in the same transaction when these
    ///   events complete it (the programme's rule, as `issueCertificate` checks it) and the learner
    ///   holds none for it, issued or revoked (a revocation stands: nothing issues it again). The
    ///   outcomes passed to `respond` then include the certificate.
    public func recordOnce(
        client: String, clientID: String, request: Data, events: [LocalEvent], certify: (learnerID: String, courseID: String)? = nil,
        respond: ([LocalOutcome]) throws -> String
    ) throws -> (response: String, replayed: Bool) {
        let node = self.node
        let validator = Validator(curriculum: validatorIndex, now: now())
        let requestHash = Blake2b.hash(request)
        return try pool.write { db in
            if let row = try Row.fetchOne(
                db, sql: "SELECT request_hash, response FROM portal_write WHERE client = ? AND client_id = ?", arguments: [client, clientID])
            {
                guard (row["request_hash"] as Data) == requestHash else { throw PortalError.idReused(clientID) }
                return (row["response"], true)
            }
            var outcomes = try Self.record(events, in: db, node: node, validator: validator)
            if let (learner, course) = certify,
               try Int.fetchOne(db, sql: "SELECT 1 FROM certificate WHERE learner_id = ? AND course_id = ?", arguments: [learner, course]) == nil,
               try CourseStatus.fetch(db, learnerID: learner, courseID: course).isEligible
            {
                outcomes += try Self.record([.issueCertificate(learnerID: learner, courseID: course)], in: db, node: node, validator: validator)
            }
            let response = try respond(outcomes)
            try db.execute(
                sql: "INSERT INTO portal_write (client, client_id, request_hash, response, at) VALUES (?, ?, ?, ?, ?)",
                arguments: [client, clientID, requestHash, response, validator.now])
            return (response, false)
        }
    }

    // MARK: Learners

    /// A learner known at this site, by id.
    public func portalLearner(id: String) throws -> PortalLearner? {
        try pool.read { db in try Row.fetchOne(try db.cachedStatement(sql: Self.learnerSQL + " WHERE l.learner_id = ?"), arguments: [id]).map(Self.learner) }
    }

    /// The learner signed in with `code`, or nil.
    public func portalLearner(code: String) throws -> PortalLearner? {
        guard Self.isValidDashboardUserName(code) else { return nil }
        return try pool.read { db in
            try Row.fetchOne(try db.cachedStatement(sql: Self.learnerSQL + " WHERE a.name = ?"), arguments: [code]).map(Self.learner)
        }
    }

    /// The learners this site holds whose home is `commune` (every learner held, if nil), by name.
    public func portalLearners(commune: Int?) throws -> [PortalLearner] {
        try pool.read { db in
            let filter = commune == nil ? "" : " WHERE l.home_commune = ?"
            return try Row.fetchAll(try db.cachedStatement(sql: Self.learnerSQL + filter + " ORDER BY l.full_name, l.learner_id"),
                arguments: StatementArguments(commune.map { [$0] } ?? [])
            ).map(Self.learner)
        }
    }

    /// What a learner has done: lessons, scores, enrollments and certificates (one read transaction).
    public func learnerProgress(_ learnerID: String) throws -> LearnerProgress {
        try pool.read { db in
            var p = LearnerProgress()
            for r in try Row.fetchAll(try db.cachedStatement(sql: "SELECT lesson_id, percent FROM progress WHERE learner_id = ?"), arguments: [learnerID]) {
                p.lessons[r["lesson_id"]] = r["percent"]
            }
            for r in try Row.fetchAll(try db.cachedStatement(sql: "SELECT quiz_id, best_score, max_score FROM quiz_best WHERE learner_id = ?"), arguments: [learnerID])
            {
                p.bestScores[r["quiz_id"]] = BestScore(quizID: r["quiz_id"], score: r["best_score"], maxScore: r["max_score"])
            }
            for r in try Row.fetchAll(try db.cachedStatement(sql: "SELECT quiz_id, count(*) AS n FROM attempt WHERE learner_id = ? GROUP BY quiz_id"), arguments: [learnerID])
            {
                p.attempts[r["quiz_id"]] = r["n"]
            }
            p.enrolled = Set(try String.fetchAll(try db.cachedStatement(sql: "SELECT course_id FROM enrollment WHERE learner_id = ? AND length % 2 = 1"), arguments: [learnerID]))
            for r in try Row.fetchAll(try db.cachedStatement(sql: "SELECT course_id, issued_at FROM certificate WHERE learner_id = ? AND revoked_at IS NULL"), arguments: [learnerID])
            {
                p.certificates[r["course_id"]] = r["issued_at"]
            }
            let courses = try String.fetchOne(try db.cachedStatement(sql: "SELECT courses FROM learner_fact WHERE learner_id = ?"), arguments: [learnerID])
            p.completedCourses = Set(FactKeeper.Fact.decodeCourses(courses ?? "").filter(\.value.completed).keys)
            return p
        }
    }

    private static let learnerSQL = """
        SELECT l.learner_id, l.national_id, l.full_name, l.role, l.unit, l.home_commune, a.name AS code, a.secret_hash
        FROM learner l LEFT JOIN portal_account a ON a.learner_id = l.learner_id
        """

    private static func learner(_ r: Row) -> PortalLearner {
        let role: String? = r["role"]
        let secret: String? = r["secret_hash"]
        return PortalLearner(
            learnerID: r["learner_id"], nationalID: r["national_id"], fullName: r["full_name"] ?? "", role: role.flatMap(Role.init(rawValue:)),
            unit: r["unit"] ?? "", homeCommune: r["home_commune"], code: r["code"], hasPIN: secret != nil)
    }

    private static func accountRow(_ db: Database, _ kind: PortalAccountKind, _ name: String) throws -> Row? {
        try Row.fetchOne(db, sql: "SELECT * FROM portal_account WHERE kind = ? AND name = ?", arguments: [kind.rawValue, name])
    }

    private static func account(_ r: Row) -> PortalAccount {
        let secret: String? = r["secret_hash"]
        return PortalAccount(
            kind: PortalAccountKind(rawValue: r["kind"]) ?? .learner, name: r["name"], learnerID: r["learner_id"], hasSecret: secret != nil,
            createdAt: r["created_at"], failedAttempts: r["failed_attempts"], lockedUntil: r["locked_until"])
    }
}

extension NodeStore {
    /// The installed release's version only (cheap: a reader checks it before using a cached manifest).
    public func installedReleaseVersion() throws -> UInt64? {
        try pool.read { db in
            try Int64.fetchOne(db.cachedStatement(sql: "SELECT version FROM release_manifest WHERE state = 'installed' ORDER BY version DESC LIMIT 1"))
                .map { UInt64(bitPattern: $0) }
        }
    }
}

extension NodeStore {
    /// Site with its portal enabled: an index of attempts by learner, for a learner's own page
    /// (attempts per quiz). Created here, not in a migration, so the hub — which merges millions of
    /// attempts and never serves a learner — does not maintain it. Idempotent.
    public func preparePortal() throws {
        try pool.write { db in try db.execute(sql: "CREATE INDEX IF NOT EXISTS attempt_by_learner ON attempt(learner_id, quiz_id)") }
    }
}
