import GRDB
import Merge

/// The set-based merge of remote batches: the hot kinds (progress, enrollments, certificates,
/// attempts) of a whole apply transaction are joined in memory per key, then written with a few
/// multi-row upserts per kind (``MergeSQL``, the same rules as the per-change path), instead of one
/// statement per change.
///
/// Why multi-row VALUES and not temporary tables: on SQLite 3.40 here, 500k progress upserts ran at
/// 262k/s one row per statement, 276k/s through a temporary table and `INSERT … SELECT` (every row
/// is written twice), and 532k/s as upserts of 100–500 rows each (BENCHMARKS.md). The rows of one
/// statement have distinct keys (joined here first), which PostgreSQL requires of an upsert too.
///
/// What it must keep exactly (the equivalence test runs both paths on random histories):
/// - the state: the joins are commutative, associative and idempotent, so joining first and
///   writing once equals writing each change in turn;
/// - attempts: an id held with other bytes, or set aside as a conflict, is resolved by
///   ``MergeWriter`` change by change, in arrival order (rare: an integrity violation);
/// - the best score: among this transaction's new attempts the first with the highest ratio, which
///   then replaces the stored best only if strictly better, as the sequence of upserts would;
/// - the home feed: each change's destination is taken when it arrives (the learner merges of the
///   transaction before it are already written), and an attempt is appended only once it merged.
///
/// A database rule that refuses a row (defence in depth behind the validator) fails a whole
/// multi-row statement: ``flush(writer:)`` then throws ``NeedsPerChangePath`` and the caller
/// repeats the transaction on the per-change path, which sets just that change aside.
struct MergeSet {
    struct NeedsPerChangePath: Error {
        let underlying: DatabaseError
    }

    /// An attempt as it arrived: what the outcome handling needs once it is known.
    struct PendingAttempt {
        let change: Change
        let record: AttemptRecord
        let node: NodeID
        let originNo: Int64
        let seq: UInt64
        /// Where the home feed wants it (``HomeRouter/destination(of:from:)``), if anywhere.
        let feedTo: Int?
    }

    /// What became of each pending attempt, in arrival order.
    enum AttemptOutcome: Equatable {
        case merged
        case unchanged
        case conflict
    }

    private var progress = Joined<Pair, ProgressRecord>()
    private var enrollments = Joined<Pair, EnrollmentRecord>()
    private var certificates = Joined<String, CertificateRecord>()
    private(set) var attempts: [PendingAttempt] = []

    var isEmpty: Bool { progress.values.isEmpty && enrollments.values.isEmpty && certificates.values.isEmpty && attempts.isEmpty }

    /// Takes a validated change of a kind merged set-based; false for the others (learner profiles and
    /// roster entries, which ``MergeWriter`` merges at once).
    mutating func add(_ change: Change, node: NodeID, originNo: Int64, seq: UInt64, feedTo: Int?) -> Bool {
        switch change.record {
        case .progress(let r):
            progress.add(Pair(r.learnerID, r.lessonID), r) { $0.merged(with: $1) }
        case .enrollment(let r):
            enrollments.add(Pair(r.learnerID, r.courseID), r) { $0.merged(with: $1) }
        case .certificate(let r):
            certificates.add(r.certificateID, r) { $0.merged(with: $1) }
        case .attempt(let r):
            attempts.append(PendingAttempt(change: change, record: r, node: node, originNo: originNo, seq: seq, feedTo: feedTo))
        case .learner, .roster:
            return false
        }
        return true
    }

    /// Writes everything held. Returns the outcome of each pending attempt, in arrival order.
    func flush(writer: inout MergeWriter) throws -> [AttemptOutcome] {
        let db = writer.db
        do {
            try Self.upsert(db, MergeSQL.progress, progress.values, MergeSQL.bind)
            try Self.upsert(db, MergeSQL.enrollment, enrollments.values, MergeSQL.bind)
            try Self.upsert(db, MergeSQL.certificate, certificates.values, MergeSQL.bind)
            return try flushAttempts(&writer)
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            throw NeedsPerChangePath(underlying: error)
        }
    }

    private func flushAttempts(_ writer: inout MergeWriter) throws -> [AttemptOutcome] {
        guard !attempts.isEmpty else { return [] }
        let db = writer.db
        // The first arrival of each id goes in at once; what the database already held under an id,
        // or a conflict set aside, keeps its RETURNING row out.
        var firstIndex = [String: Int]()
        var firsts = [AttemptRecord]()
        for (i, a) in attempts.enumerated() where firstIndex[a.record.attemptID] == nil {
            firstIndex[a.record.attemptID] = i
            firsts.append(a.record)
        }
        var inserted = Set<String>()
        let guarded = writer.conflictsHeld
        try Self.write(
            db, rows: firsts, columns: MergeSQL.attempt.columns.count,
            sql: { guarded ? MergeSQL.attemptGuarded(rows: $0, returning: "attempt_id") : MergeSQL.attempt.insert(rows: $0, returning: "attempt_id") },
            bind: MergeSQL.bind, returned: { inserted.insert($0.text(0)) })

        // The best score: per learner and quiz, the first new attempt with the highest ratio.
        var best = Joined<Pair, AttemptRecord>()
        for r in firsts where inserted.contains(r.attemptID) {
            best.add(Pair(r.learnerID, r.quizID), r) { held, new in new.score * held.maxScore > held.score * new.maxScore ? new : held }
        }
        try Self.upsert(db, MergeSQL.quizBest, best.values, MergeSQL.bindBest)

        // Every other arrival: the same bytes again merge as a no-op; anything else is what the
        // per-change path resolves, in arrival order.
        // Ids inserted above were in no conflict set; one gets there only through an arrival below.
        var conflicted = Set<String>()
        var outcomes = [AttemptOutcome]()
        outcomes.reserveCapacity(attempts.count)
        for (i, a) in attempts.enumerated() {
            let id = a.record.attemptID
            let first = firstIndex[id]!
            if inserted.contains(id), !conflicted.contains(id), first == i || a.record == attempts[first].record {
                outcomes.append(first == i ? .merged : .unchanged)
                continue
            }
            switch try writer.merge(a.change, from: a.node) {
            case .attemptConflict:
                conflicted.insert(id)
                outcomes.append(.conflict)
            case .mergedFactInputsUnchanged: outcomes.append(.unchanged)
            case .merged, .homeContested: outcomes.append(.merged)
            }
        }
        return outcomes
    }

    /// Upserts `rows` of one kind, many per statement.
    private static func upsert<R>(_ db: Database, _ kind: MergeSQL.Kind, _ rows: [R], _ bind: (R, FastStatement, Int32) -> Void) throws {
        try write(db, rows: rows, columns: kind.columns.count, sql: { kind.insert(rows: $0) }, bind: bind, returned: nil)
    }

    /// Rows per statement: at most 256 (8 × 256 parameters stay far below SQLite's 32,766), the
    /// remainder in powers of two, so a kind compiles at most nine statements, each kept in the
    /// connection's cache.
    static func chunkSizes(_ count: Int) -> [Int] {
        var out = [Int](repeating: 256, count: count / 256)
        var rest = count % 256
        var size = 128
        while rest > 0 {
            if rest >= size {
                out.append(size)
                rest -= size
            } else {
                size /= 2
            }
        }
        return out
    }

    private static func write<R>(
        _ db: Database, rows: [R], columns: Int, sql: (Int) -> String, bind: (R, FastStatement, Int32) -> Void,
        returned: ((FastStatement.Columns) -> Void)?
    ) throws {
        var start = 0
        for size in chunkSizes(rows.count) {
            let statement = try FastStatement.cached(db, sql: sql(size))
            for k in 0..<size { bind(rows[start + k], statement, Int32(k * columns + 1)) }
            if let returned { try statement.forEachRow(returned) } else { try statement.execute() }
            start += size
        }
    }
}

/// A learner and a lesson, course or quiz.
struct Pair: Hashable {
    let a: String
    let b: String
    init(_ a: String, _ b: String) {
        self.a = a
        self.b = b
    }
}

/// Values joined per key, in first-arrival order (so statements, and what they return, are the same
/// on every run).
struct Joined<Key: Hashable, Value> {
    private var index: [Key: Int] = [:]
    private(set) var values: [Value] = []

    mutating func add(_ key: Key, _ value: Value, join: (Value, Value) -> Value) {
        if let i = index[key] {
            values[i] = join(values[i], value)
        } else {
            index[key] = values.count
            values.append(value)
        }
    }
}
