import Foundation
import GRDB
import Merge

/// Carries out the merge rules of ``ReplicaState`` in SQL, with statements prepared once per
/// transaction. Hot kinds (progress, attempts, enrollments, certificates) are single upserts;
/// learner profiles, which are rare, go through the Swift join itself.
struct MergeWriter {
    enum Outcome { case merged, attemptConflict }

    let db: Database
    private let progress: Statement
    private let attemptInsert: Statement
    private let enrollment: Statement
    private let certificate: Statement

    init(_ db: Database) throws {
        self.db = db
        progress = try db.makeStatement(
            sql: """
                INSERT INTO progress (learner_id, lesson_id, percent, completed_at) VALUES (?, ?, ?, ?)
                ON CONFLICT(learner_id, lesson_id) DO UPDATE SET
                  percent = max(percent, excluded.percent),
                  completed_at = coalesce(min(completed_at, excluded.completed_at), completed_at, excluded.completed_at)
                """)
        attemptInsert = try db.makeStatement(
            sql: """
                INSERT INTO attempt (attempt_id, learner_id, quiz_id, answers, score, max_score, started_at, finished_at)
                SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8
                WHERE NOT EXISTS (SELECT 1 FROM attempt_conflict WHERE attempt_id = ?1)
                ON CONFLICT(attempt_id) DO NOTHING
                """)
        enrollment = try db.makeStatement(
            sql: """
                INSERT INTO enrollment (learner_id, course_id, length) VALUES (?, ?, ?)
                ON CONFLICT(learner_id, course_id) DO UPDATE SET length = max(length, excluded.length)
                """)
        certificate = try db.makeStatement(
            sql: """
                INSERT INTO certificate (certificate_id, learner_id, course_id, issued_at, revoked_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(certificate_id) DO UPDATE SET
                  issued_at = min(issued_at, excluded.issued_at),
                  revoked_at = coalesce(min(revoked_at, excluded.revoked_at), revoked_at, excluded.revoked_at)
                """)
    }

    /// Joins one (already validated) change from `node` into the tables.
    mutating func merge(_ change: Change, from node: NodeID) throws -> Outcome {
        switch change.record {
        case .learner(let c):
            let incoming = c.record(stamp: change.hlc, node: node)
            let merged = try LearnerRow.fetch(db, id: c.learnerID).map { $0.merged(with: incoming) } ?? incoming
            try LearnerRow.save(merged, db)
        case .enrollment(let r):
            enrollment.setUncheckedArguments([r.learnerID, r.courseID, Int64(bitPattern: r.length)])
            try enrollment.execute()
        case .progress(let r):
            progress.setUncheckedArguments([r.learnerID, r.lessonID, r.percent, r.completedAt])
            try progress.execute()
        case .attempt(let r):
            attemptInsert.setUncheckedArguments([
                r.attemptID, r.learnerID, r.quizID, AttemptRow.encodeAnswers(r.answers), r.score, r.maxScore,
                r.startedAt, r.finishedAt,
            ])
            try attemptInsert.execute()
            if db.changesCount == 0 { return try resolveAttemptCollision(r) }
        case .certificate(let r):
            certificate.setUncheckedArguments([r.certificateID, r.learnerID, r.courseID, r.issuedAt, r.revokedAt])
            try certificate.execute()
        }
        return .merged
    }

    /// The insert did nothing: either the same attempt again (a no-op), or a different one
    /// under the same id, which moves the id into the conflict set on every replica alike.
    private func resolveAttemptCollision(_ r: AttemptRecord) throws -> Outcome {
        if try Bool.fetchOne(db, sql: "SELECT 1 FROM attempt_conflict WHERE attempt_id = ?", arguments: [r.attemptID])
            == true
        {
            return .attemptConflict
        }
        if let existing = try AttemptRow.fetch(db, id: r.attemptID), existing == r { return .merged }
        try db.execute(sql: "DELETE FROM attempt WHERE attempt_id = ?", arguments: [r.attemptID])
        try db.execute(sql: "INSERT INTO attempt_conflict (attempt_id) VALUES (?)", arguments: [r.attemptID])
        return .attemptConflict
    }
}

/// Row mapping for learners (per-field register columns).
enum LearnerRow {
    static func fetch(_ db: Database, id: String) throws -> LearnerRecord? {
        try Row.fetchOne(db, sql: "SELECT * FROM learner WHERE learner_id = ?", arguments: [id]).map(decode)
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

    static func save(_ r: LearnerRecord, _ db: Database) throws {
        func stamp<V>(_ reg: LWWRegister<V>?) -> Int64? { reg.map { Int64(bitPattern: $0.stamp.rawValue) } }
        try db.execute(
            sql: """
                INSERT OR REPLACE INTO learner (learner_id, national_id, full_name, full_name_hlc, full_name_node,
                  role, role_hlc, role_node, unit, unit_hlc, unit_node, home_commune, home_commune_hlc, home_commune_node)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                r.learnerID, r.nationalID,
                r.fullName?.value, stamp(r.fullName), r.fullName?.node.bytes,
                r.role?.value.rawValue, stamp(r.role), r.role?.node.bytes,
                r.unit?.value, stamp(r.unit), r.unit?.node.bytes,
                r.homeCommune?.value, stamp(r.homeCommune), r.homeCommune?.node.bytes,
            ])
    }
}

/// Row mapping for attempts.
enum AttemptRow {
    /// Answers as the same varint bytes the wire uses: compact and exact.
    static func encodeAnswers(_ answers: [Int]) -> Data {
        var w = ByteWriter(capacity: answers.count + 2)
        for a in answers { w.zigzag(Int64(a)) }
        return Data(w.bytes)
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
