import Foundation
import GRDB
import Merge

/// Carries out the merge rules of ``ReplicaState`` in SQL, one change at a time, with statements
/// compiled once per connection (GRDB's statement cache) and reused across transactions. Hot kinds
/// (progress, attempts, enrollments, certificates) are single upserts (``MergeSQL``); learner
/// profiles and roster entries go through the Swift join itself. Remote batches take the
/// set-based path (``MergeSet``) for the hot kinds; this one is its reference and its fallback.
struct MergeWriter {
    enum Outcome: Equatable {
        /// Merged; a row that a derived fact reads may have changed (``FactKeeper/touch(_:)`` decides).
        case merged
        /// Merged, and no row that a derived fact reads changed: the same progress again or one that
        /// loses the join, an attempt already held or that is not a new best score.
        case mergedFactInputsUnchanged
        case attemptConflict
        /// Merged, but two communes claim the learner's home: the first claim holds; an operator
        /// should look (a site writing someone else's learner, or a move that needs a transfer).
        case homeContested
    }

    let db: Database
    private let progress: FastStatement
    private let attemptInsert: FastStatement
    private let attemptInsertGuarded: FastStatement
    private let enrollment: FastStatement
    private let certificate: FastStatement
    private let quizBest: FastStatement
    private let learnerFetch: FastStatement
    private let learnerSave: FastStatement
    /// Whether `attempt_conflict` may hold a row. While it is empty (the usual case) attempts are
    /// inserted without looking there: the guard could not refuse anything.
    private(set) var conflictsHeld: Bool
    /// Learners whose stored attempt was set aside as a conflict: their best score may have fallen,
    /// and an attempt id names no learner, so this may be another learner than the incoming
    /// change's. Callers mark them for ``FactKeeper`` before flushing facts.
    private(set) var setAsideLearners: Set<String> = []

    init(_ db: Database) throws {
        self.db = db
        quizBest = try .cached(db, sql: MergeSQL.quizBest.insert(rows: 1))
        progress = try .cached(db, sql: MergeSQL.progress.insert(rows: 1))
        attemptInsertGuarded = try .cached(db, sql: MergeSQL.attemptGuarded(rows: 1))
        attemptInsert = try .cached(db, sql: MergeSQL.attempt.insert(rows: 1))
        enrollment = try .cached(db, sql: MergeSQL.enrollment.insert(rows: 1))
        certificate = try .cached(db, sql: MergeSQL.certificate.insert(rows: 1))
        learnerFetch = try .cached(db, sql: LearnerRow.fetchSQL)
        learnerSave = try .cached(db, sql: LearnerRow.saveSQL)
        conflictsHeld = try Bool.fetchOne(db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM attempt_conflict)")) ?? true
    }

    /// Joins one (already validated) change from `node` into the tables.
    mutating func merge(_ change: Change, from node: NodeID) throws -> Outcome {
        switch change.record {
        case .learner(let c):
            let incoming = c.record(stamp: change.hlc, node: node)
            let existing = try LearnerRow.fetch(learnerFetch, id: c.learnerID)
            let merged = existing.map { $0.merged(with: incoming) } ?? incoming
            if merged != existing { try LearnerRow.save(merged, learnerSave) }
            if let had = existing?.homeCommune?.value, let claimed = c.homeCommune, had != claimed { return .homeContested }
            if merged == existing { return .mergedFactInputsUnchanged }
        case .enrollment(let r):
            MergeSQL.bind(r, enrollment, at: 1)
            try enrollment.execute()
        case .progress(let r):
            MergeSQL.bind(r, progress, at: 1)
            if try progress.execute() == 0 { return .mergedFactInputsUnchanged }
        case .attempt(let r):
            let s = conflictsHeld ? attemptInsertGuarded : attemptInsert
            MergeSQL.bind(r, s, at: 1)
            if try s.execute() == 0 { return try resolveAttemptCollision(r) }
            MergeSQL.bindBest(r, quizBest, at: 1)
            if try quizBest.execute() == 0 { return .mergedFactInputsUnchanged }
        case .certificate(let r):
            MergeSQL.bind(r, certificate, at: 1)
            try certificate.execute()
        case .roster(let c):
            // Rare (a hub's roster import), so the Swift join itself, exactly as the reference model.
            let incoming = c.record(stamp: change.hlc, node: node)
            let existing = try RosterRow.fetch(db, id: c.learnerID)
            try RosterRow.save(existing.map { $0.merged(with: incoming) } ?? incoming, db)
        }
        return .merged
    }

    /// The insert did nothing: either the same attempt again (a no-op), or a different one
    /// under the same id, which moves the id into the conflict set on every replica alike.
    private mutating func resolveAttemptCollision(_ r: AttemptRecord) throws -> Outcome {
        if try Bool.fetchOne(db, sql: "SELECT 1 FROM attempt_conflict WHERE attempt_id = ?", arguments: [r.attemptID])
            == true
        {
            return .attemptConflict
        }
        guard let existing = try AttemptRow.fetch(db, id: r.attemptID) else { return .attemptConflict }
        if existing == r { return .mergedFactInputsUnchanged }
        try db.execute(sql: "DELETE FROM attempt WHERE attempt_id = ?", arguments: [r.attemptID])
        try db.execute(sql: "INSERT INTO attempt_conflict (attempt_id) VALUES (?)", arguments: [r.attemptID])
        conflictsHeld = true
        // The set-aside attempt may have been the best: rebuild that one derived row. A scan,
        // but only on an integrity violation.
        setAsideLearners.insert(existing.learnerID)
        let key: StatementArguments = [existing.learnerID, existing.quizID]
        try db.execute(sql: "DELETE FROM quiz_best WHERE learner_id = ? AND quiz_id = ?", arguments: key)
        try db.execute(
            sql: """
                INSERT INTO quiz_best (learner_id, quiz_id, best_score, max_score)
                SELECT learner_id, quiz_id, score, max_score FROM attempt WHERE learner_id = ? AND quiz_id = ?
                ORDER BY score * 1.0 / max_score DESC LIMIT 1
                """, arguments: key)
        return .attemptConflict
    }
}

/// Row mapping for learners (per-field register columns).
enum LearnerRow {
    /// The columns ``read(_:)`` expects, in order. Read and written through ``FastStatement``: a hub
    /// merges a learner change for every registration, and GRDB's rows by column name and boxed
    /// arguments were most of that cost (BENCHMARKS.md).
    static let fetchSQL = """
        SELECT learner_id, national_id, full_name, full_name_hlc, full_name_node, role, role_hlc, role_node,
          unit, unit_hlc, unit_node, home_commune, home_commune_hlc, home_commune_node
        FROM learner WHERE learner_id = ?
        """
    static let saveSQL = """
        INSERT OR REPLACE INTO learner (learner_id, national_id, full_name, full_name_hlc, full_name_node,
          role, role_hlc, role_node, unit, unit_hlc, unit_node, home_commune, home_commune_hlc, home_commune_node)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """

    static func fetch(_ db: Database, id: String) throws -> LearnerRecord? {
        try fetch(.cached(db, sql: fetchSQL), id: id)
    }

    /// `statement` is ``fetchSQL``.
    static func fetch(_ statement: FastStatement, id: String) throws -> LearnerRecord? {
        statement.bind(1, id)
        var out: LearnerRecord?
        try statement.forEachRow { out = read($0) }
        return out
    }

    private static func read(_ c: FastStatement.Columns) -> LearnerRecord {
        func reg<V>(_ i: Int32, _ value: (Int32) -> V?) -> LWWRegister<V>? {
            guard !c.isNull(i), !c.isNull(i + 1), !c.isNull(i + 2), let v = value(i),
                  let node = NodeID(bytes: c.blob(i + 2)) else { return nil }
            return LWWRegister(value: v, stamp: HLCTimestamp(rawValue: UInt64(bitPattern: Int64(c.int(i + 1)))), node: node)
        }
        return LearnerRecord(
            learnerID: c.text(0), nationalID: c.text(1),
            fullName: reg(2) { c.text($0) },
            role: reg(5) { Role(rawValue: c.text($0)) },
            unit: reg(8) { c.text($0) },
            homeCommune: reg(11) { c.int($0) })
    }

    static func decode(_ row: Row) -> LearnerRecord {
        func reg<V>(_ col: String, _ value: V?) -> LWWRegister<V>? {
            guard let value, let hlc: Int64 = row[col + "_hlc"], let nodeBytes: Data = row[col + "_node"],
                  let node = NodeID(bytes: nodeBytes) else { return nil }
            return LWWRegister(value: value, stamp: HLCTimestamp(rawValue: UInt64(bitPattern: hlc)), node: node)
        }
        let roleRaw: String? = row["role"]
        return LearnerRecord(
            learnerID: row["learner_id"], nationalID: row["national_id"],
            fullName: reg("full_name", row["full_name"] as String?),
            role: reg("role", roleRaw.flatMap(Role.init(rawValue:))),
            unit: reg("unit", row["unit"] as String?),
            homeCommune: reg("home_commune", row["home_commune"] as Int?))
    }

    /// `statement` is ``saveSQL``.
    static func save(_ r: LearnerRecord, _ statement: FastStatement) throws {
        func stamp<V>(_ reg: LWWRegister<V>?) -> Int64? { reg.map { Int64(bitPattern: $0.stamp.rawValue) } }
        let s = statement
        s.bind(1, r.learnerID)
        s.bind(2, r.nationalID)
        s.bind(3, r.fullName?.value)
        s.bind(4, stamp(r.fullName))
        s.bind(5, r.fullName?.node.bytes)
        s.bind(6, r.role?.value.rawValue)
        s.bind(7, stamp(r.role))
        s.bind(8, r.role?.node.bytes)
        s.bind(9, r.unit?.value)
        s.bind(10, stamp(r.unit))
        s.bind(11, r.unit?.node.bytes)
        s.bind(12, r.homeCommune.map { Int64($0.value) })
        s.bind(13, stamp(r.homeCommune))
        s.bind(14, r.homeCommune?.node.bytes)
        try s.execute()
    }
}

/// Row mapping for roster entries.
enum RosterRow {
    static func fetch(_ db: Database, id: String) throws -> RosterRecord? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM roster WHERE learner_id = ?"), arguments: [id]).map(decode)
    }

    static func decode(_ row: Row) -> RosterRecord {
        let entry = RosterEntry(
            fullName: row["full_name"], role: Role(rawValue: row["role"]) ?? .other, unit: row["unit"],
            commune: row["commune_code"], active: row["active"] as Int == 1)
        let hlc: Int64 = row["hlc"]
        let node = NodeID(bytes: row["node"] as Data) ?? NodeID(bytes: Data(count: 32))!
        return RosterRecord(
            learnerID: row["learner_id"], nationalID: row["national_id"],
            entry: LWWRegister(value: entry, stamp: HLCTimestamp(rawValue: UInt64(bitPattern: hlc)), node: node))
    }

    static func save(_ r: RosterRecord, _ db: Database) throws {
        let e = r.entry.value
        try db.cachedStatement(
            sql: """
                INSERT OR REPLACE INTO roster (learner_id, national_id, full_name, role, unit, commune_code, active, hlc, node)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            r.learnerID, r.nationalID, e.fullName, e.role.rawValue, e.unit, e.commune, e.active ? 1 : 0,
            Int64(bitPattern: r.entry.stamp.rawValue), r.entry.node.bytes,
        ])
    }
}

/// Row mapping for attempts.
enum AttemptRow {
    /// Answers as the same varint bytes the wire uses: compact and exact.
    static func answerBytes(_ answers: [Int]) -> [UInt8] {
        var w = ByteWriter(capacity: answers.count + 2)
        for a in answers { w.zigzag(Int64(a)) }
        return w.bytes
    }

    static func decodeAnswers(_ data: Data) -> [Int] {
        data.withUnsafeBytes { raw in
            var r = ByteReader(raw)
            var out = [Int]()
            while r.remaining > 0, let v = try? r.zigzag("answer") { out.append(Int(v)) }
            return out
        }
    }

    static func decode(_ row: Row) -> AttemptRecord {
        AttemptRecord(
            attemptID: row["attempt_id"], learnerID: row["learner_id"], quizID: row["quiz_id"],
            answers: decodeAnswers(row["answers"]), score: row["score"], maxScore: row["max_score"],
            startedAt: row["started_at"], finishedAt: row["finished_at"])
    }

    static func fetch(_ db: Database, id: String) throws -> AttemptRecord? {
        try Row.fetchOne(db, sql: "SELECT * FROM attempt WHERE attempt_id = ?", arguments: [id]).map(decode)
    }
}
