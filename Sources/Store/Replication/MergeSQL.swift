import Merge

/// The merge rules of the hot record kinds as SQL upserts, written once and used by both merge
/// paths: ``MergeWriter`` (one row per statement) and ``MergeSet`` (many rows per statement). Each
/// is the join of docs/crdt-rules.md for its kind; plain `INSERT … ON CONFLICT … DO UPDATE … WHERE`,
/// which PostgreSQL also speaks (with `greatest`/`least` for SQLite's two-argument `max`/`min`).
enum MergeSQL {
    struct Kind {
        let table: String
        let columns: [String]
        /// What follows the VALUES list: the conflict target and the join.
        let onConflict: String
        /// ``insert(rows:returning:)`` without RETURNING for each size ``MergeSet/chunkSizes(_:)``
        /// uses, built once: the merge asks for them on every flush.
        private let sized: [Int: String]

        init(table: String, columns: [String], onConflict: String) {
            self.table = table
            self.columns = columns
            self.onConflict = onConflict
            sized = Dictionary(uniqueKeysWithValues: MergeSQL.sizes.map {
                ($0, Self.build(table, columns, onConflict, rows: $0, returning: nil))
            })
        }

        /// `INSERT INTO table (columns) VALUES (?, …), … <onConflict>` for `rows` rows.
        func insert(rows: Int, returning: String? = nil) -> String {
            if returning == nil, let sql = sized[rows] { return sql }
            return Self.build(table, columns, onConflict, rows: rows, returning: returning)
        }

        private static func build(_ table: String, _ columns: [String], _ onConflict: String, rows: Int, returning: String?) -> String {
            "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES \(MergeSQL.placeholders(rows: rows, columns: columns.count))\n"
                + onConflict + (returning.map { "\nRETURNING \($0)" } ?? "")
        }
    }

    /// The statement sizes ``MergeSet/chunkSizes(_:)`` produces: powers of two up to 256.
    static let sizes = (0...8).map { 1 << $0 }

    static func placeholders(rows: Int, columns: Int) -> String {
        let row = "(" + Array(repeating: "?", count: columns).joined(separator: ", ") + ")"
        return Array(repeating: row, count: rows).joined(separator: ", ")
    }

    /// Highest percent; earliest completion time. The WHERE leaves a row that would not change
    /// alone, so the change count says whether the join moved anything.
    static let progress = Kind(
        table: "progress", columns: ["learner_id", "lesson_id", "percent", "completed_at"],
        onConflict: """
            ON CONFLICT(learner_id, lesson_id) DO UPDATE SET
              percent = max(percent, excluded.percent),
              completed_at = coalesce(min(completed_at, excluded.completed_at), completed_at, excluded.completed_at)
            WHERE excluded.percent > percent
              OR (excluded.completed_at IS NOT NULL AND (completed_at IS NULL OR excluded.completed_at < completed_at))
            """)

    /// Causal length: the highest wins.
    static let enrollment = Kind(
        table: "enrollment", columns: ["learner_id", "course_id", "length"],
        onConflict: "ON CONFLICT(learner_id, course_id) DO UPDATE SET length = max(length, excluded.length)")

    /// Issued once: the earliest issue time; revocation never clears (the earliest revocation).
    static let certificate = Kind(
        table: "certificate", columns: ["certificate_id", "learner_id", "course_id", "issued_at", "revoked_at"],
        onConflict: """
            ON CONFLICT(certificate_id) DO UPDATE SET
              issued_at = min(issued_at, excluded.issued_at),
              revoked_at = coalesce(min(revoked_at, excluded.revoked_at), revoked_at, excluded.revoked_at)
            """)

    /// Derived: the best attempt per learner and quiz; a strictly better ratio replaces it.
    static let quizBest = Kind(
        table: "quiz_best", columns: ["learner_id", "quiz_id", "best_score", "max_score"],
        onConflict: """
            ON CONFLICT(learner_id, quiz_id) DO UPDATE SET best_score = excluded.best_score, max_score = excluded.max_score
            WHERE excluded.best_score * max_score > best_score * excluded.max_score
            """)

    /// Immutable, insert-if-absent. A different attempt under a held id is found by the caller
    /// (nothing inserted) and resolved by ``MergeWriter``.
    static let attempt = Kind(
        table: "attempt",
        columns: ["attempt_id", "learner_id", "quiz_id", "answers", "score", "max_score", "started_at", "finished_at"],
        onConflict: "ON CONFLICT(attempt_id) DO NOTHING")

    /// ``attempt`` for `rows` rows, skipping ids in the conflict set (once an id is there, no
    /// attempt under it is held again, on every replica alike).
    static func attemptGuarded(rows: Int, returning: String? = nil) -> String {
        if returning == nil, let sql = attemptGuardedSized[rows] { return sql }
        return buildAttemptGuarded(rows: rows, returning: returning)
    }

    private static let attemptGuardedSized = Dictionary(uniqueKeysWithValues: sizes.map {
        ($0, buildAttemptGuarded(rows: $0, returning: nil))
    })

    private static func buildAttemptGuarded(rows: Int, returning: String?) -> String {
        let k = attempt
        return """
            INSERT INTO attempt (\(k.columns.joined(separator: ", ")))
            SELECT * FROM (VALUES \(placeholders(rows: rows, columns: k.columns.count))) AS v
            WHERE NOT EXISTS (SELECT 1 FROM attempt_conflict c WHERE c.attempt_id = v.column1)
            \(k.onConflict)
            """ + (returning.map { "\nRETURNING \($0)" } ?? "")
    }
}

/// Binds one row of each kind at parameter `i` onwards, in ``MergeSQL/Kind/columns`` order.
extension MergeSQL {
    static func bind(_ r: ProgressRecord, _ s: FastStatement, at i: Int32) {
        s.bind(i, r.learnerID)
        s.bind(i + 1, r.lessonID)
        s.bind(i + 2, r.percent)
        s.bind(i + 3, r.completedAt)
    }

    static func bind(_ r: EnrollmentRecord, _ s: FastStatement, at i: Int32) {
        s.bind(i, r.learnerID)
        s.bind(i + 1, r.courseID)
        s.bind(i + 2, Int64(bitPattern: r.length))
    }

    static func bind(_ r: CertificateRecord, _ s: FastStatement, at i: Int32) {
        s.bind(i, r.certificateID)
        s.bind(i + 1, r.learnerID)
        s.bind(i + 2, r.courseID)
        s.bind(i + 3, r.issuedAt)
        s.bind(i + 4, r.revokedAt)
    }

    static func bind(_ r: AttemptRecord, _ s: FastStatement, at i: Int32) {
        s.bind(i, r.attemptID)
        s.bind(i + 1, r.learnerID)
        s.bind(i + 2, r.quizID)
        s.bind(i + 3, AttemptRow.answerBytes(r.answers))
        s.bind(i + 4, r.score)
        s.bind(i + 5, r.maxScore)
        s.bind(i + 6, r.startedAt)
        s.bind(i + 7, r.finishedAt)
    }

    /// The best-score row an attempt proposes.
    static func bindBest(_ r: AttemptRecord, _ s: FastStatement, at i: Int32) {
        s.bind(i, r.learnerID)
        s.bind(i + 1, r.quizID)
        s.bind(i + 2, r.score)
        s.bind(i + 3, r.maxScore)
    }
}
