import GRDB
import Merge

/// The set-based merge of remote batches: the hot kinds (progress, enrollments, certificates,
/// attempts) of a whole apply transaction are held in arrival order, then written with a few
/// multi-row upserts per kind (``MergeSQL``, the same rules as the per-change path), instead of one
/// statement per change.
///
/// Why multi-row VALUES and not temporary tables: on SQLite 3.40 here, 500k progress upserts ran at
/// 240k/s one row per statement, 241k/s through a temporary table and `INSERT … SELECT` (every row
/// is written twice), and 416k/s 256 rows per statement (`hocvu-bench upsert-shapes`, BENCHMARKS.md).
///
/// What it must keep exactly (the equivalence test runs both paths on random histories):
/// - the state: SQLite carries out a multi-row upsert row by row, each row seeing the rows before it,
///   so a statement of rows in arrival order leaves what the same rows one per statement leave.
///   (PostgreSQL refuses an upsert that touches one row twice: there, each statement's rows are
///   joined per key first with the records' own `merged(with:)`, which the joins' laws allow.)
/// - attempts: a statement's rows all go in, or (an id already held, or twice in the transaction)
///   the statement is undone and run again returning what it inserted; every attempt not inserted
///   is then resolved by ``MergeWriter`` change by change, in arrival order — the same attempt
///   again is a no-op, other bytes under the id are a conflict (rare: an integrity violation);
/// - the best score: the new attempts' upserts in arrival order, as the per-change path runs them;
///   a conflict found afterwards rebuilds that learner's best from the attempts left, as there;
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

    private var progress: [ProgressRecord] = []
    private var enrollments: [EnrollmentRecord] = []
    private var certificates: [CertificateRecord] = []
    private var attemptRecords: [AttemptRecord] = []
    private(set) var attempts: [PendingAttempt] = []

    /// Takes a validated change of a kind merged set-based; false for the others (learner profiles and
    /// roster entries, which ``MergeWriter`` merges at once).
    mutating func add(_ change: Change, node: NodeID, originNo: Int64, seq: UInt64, feedTo: Int?) -> Bool {
        switch change.record {
        case .progress(let r): progress.append(r)
        case .enrollment(let r): enrollments.append(r)
        case .certificate(let r): certificates.append(r)
        case .attempt(let r):
            attemptRecords.append(r)
            attempts.append(PendingAttempt(change: change, node: node, originNo: originNo, seq: seq, feedTo: feedTo))
        case .learner, .roster:
            return false
        }
        return true
    }

    /// Writes everything held. Returns the outcome of each pending attempt, in arrival order.
    func flush(writer: inout MergeWriter) throws -> [AttemptOutcome] {
        let db = writer.db
        do {
            try Self.upsert(db, MergeSQL.progress, progress, MergeSQL.bind)
            try Self.upsert(db, MergeSQL.enrollment, enrollments, MergeSQL.bind)
            try Self.upsert(db, MergeSQL.certificate, certificates, MergeSQL.bind)
            return try flushAttempts(&writer)
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            throw NeedsPerChangePath(underlying: error)
        }
    }

    private func flushAttempts(_ writer: inout MergeWriter) throws -> [AttemptOutcome] {
        guard !attemptRecords.isEmpty else { return [] }
        let db = writer.db
        let guarded = writer.conflictsHeld
        let columns = MergeSQL.attempt.columns.count
        var inserted = [Bool](repeating: true, count: attemptRecords.count)
        var start = 0
        for size in Self.chunkSizes(attemptRecords.count) {
            let range = start..<(start + size)
            start += size
            let insert = try FastStatement.cached(
                db, sql: guarded ? MergeSQL.attemptGuarded(rows: size) : MergeSQL.attempt.insert(rows: size))
            var all = false
            try db.inSavepoint {
                for (k, i) in range.enumerated() { MergeSQL.bind(attemptRecords[i], insert, at: Int32(k * columns + 1)) }
                all = try insert.execute() == size
                return all ? .commit : .rollback
            }
            if all { continue }
            // Some id was held already: again, learning which rows went in. Each id inserted is
            // its first row in the statement (a later one with the same id found it there).
            let returning = try FastStatement.cached(
                db, sql: guarded
                    ? MergeSQL.attemptGuarded(rows: size, returning: "attempt_id")
                    : MergeSQL.attempt.insert(rows: size, returning: "attempt_id"))
            for (k, i) in range.enumerated() { MergeSQL.bind(attemptRecords[i], returning, at: Int32(k * columns + 1)) }
            var ids = Set<String>()
            try returning.forEachRow { ids.insert($0.text(0)) }
            for i in range { inserted[i] = ids.remove(attemptRecords[i].attemptID) != nil }
        }

        // The best score moves with each attempt that went in, in arrival order.
        try Self.write(
            db, rows: attemptRecords.indices.filter { inserted[$0] }, columns: MergeSQL.quizBest.columns.count,
            sql: { MergeSQL.quizBest.insert(rows: $0) }, bind: { i, s, at in MergeSQL.bindBest(attemptRecords[i], s, at: at) },
            returned: nil)

        // The rest, change by change in arrival order, as the per-change path would have met them.
        var outcomes = [AttemptOutcome](repeating: .merged, count: attempts.count)
        for i in attempts.indices where !inserted[i] {
            switch try writer.merge(attempts[i].change, from: attempts[i].node) {
            case .attemptConflict: outcomes[i] = .conflict
            case .mergedFactInputsUnchanged: outcomes[i] = .unchanged
            case .merged, .homeContested: outcomes[i] = .merged
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

    /// Writes `rows` in statements of ``chunkSizes(_:)`` rows: `sql(n)` is the statement for n rows,
    /// `bind` binds one row from its first parameter on.
    static func write<R>(
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
