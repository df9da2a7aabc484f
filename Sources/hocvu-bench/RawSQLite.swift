import CSQLite
import Foundation
import Merge

/// The baseline: the same rows through plain prepared INSERTs on the C API, one transaction,
/// the same pragmas as the store (WAL, synchronous=FULL).
struct RawSQLite {
    let db: OpaquePointer

    init(path: String) throws {
        var handle: OpaquePointer?
        guard sqlite3_open(path, &handle) == SQLITE_OK, let handle else {
            throw BenchFailure("raw baseline: cannot open \(path)")
        }
        db = handle
        try exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
    }

    func close() { sqlite3_close(db) }

    func exec(_ sql: String) throws {
        guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else {
            throw BenchFailure("raw baseline: \(String(cString: sqlite3_errmsg(db)))")
        }
    }

    /// Runs `sql` once per row, binding each row's values (Int64, String or Data) in order.
    func insertAll(_ sql: String, rows: Int, bind: (OpaquePointer, Int) -> Void) throws {
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &stmt, nil) == SQLITE_OK, let stmt else {
            throw BenchFailure("raw baseline: \(String(cString: sqlite3_errmsg(db)))")
        }
        defer { sqlite3_finalize(stmt) }
        for i in 0..<rows {
            bind(stmt, i)
            guard sqlite3_step(stmt) == SQLITE_DONE else { throw BenchFailure("raw baseline: \(String(cString: sqlite3_errmsg(db)))") }
            sqlite3_reset(stmt)
        }
    }

    static func bind(_ stmt: OpaquePointer, _ index: Int32, _ value: String) {
        sqlite3_bind_text(stmt, index, value, -1, CSQLite_TRANSIENT())
    }

    static func bind(_ stmt: OpaquePointer, _ index: Int32, _ value: Int64?) {
        if let value { sqlite3_bind_int64(stmt, index, value) } else { sqlite3_bind_null(stmt, index) }
    }

    static func bind(_ stmt: OpaquePointer, _ index: Int32, _ value: Data) {
        _ = value.withUnsafeBytes { sqlite3_bind_blob(stmt, index, $0.baseAddress, Int32($0.count), CSQLite_TRANSIENT()) }
    }

    /// The attempt table both benchmarks use as the raw baseline: same columns and key as the store's.
    func createAttemptTable() throws {
        try exec("""
            CREATE TABLE attempt (attempt_id TEXT PRIMARY KEY, learner_id TEXT, quiz_id TEXT, answers BLOB, score INTEGER,
              max_score INTEGER, started_at INTEGER, finished_at INTEGER) WITHOUT ROWID;
            """)
    }

    /// Inserts attempts with prepared statements (answers encoded as the store encodes them).
    func insertAttempts(_ rows: [AttemptRecord]) throws {
        try insertAll("INSERT INTO attempt VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows: rows.count) { s, i in
            let a = rows[i]
            Self.bind(s, 1, a.attemptID); Self.bind(s, 2, a.learnerID); Self.bind(s, 3, a.quizID)
            var w = ByteWriter()
            for x in a.answers { w.zigzag(Int64(x)) }
            Self.bind(s, 4, Data(w.bytes))
            Self.bind(s, 5, Int64(a.score)); Self.bind(s, 6, Int64(a.maxScore))
            Self.bind(s, 7, a.startedAt); Self.bind(s, 8, a.finishedAt)
        }
    }
}
