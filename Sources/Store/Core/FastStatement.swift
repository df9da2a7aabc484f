import CSQLite
import Foundation
import GRDB

/// A prepared statement on GRDB's own connection, bound and stepped through the SQLite C API.
///
/// Only the merge hot path uses it: GRDB's `StatementArguments` box every value in an
/// existential, which cost a quarter of the CPU of applying a remote change (measured with
/// `perf`, see BENCHMARKS.md). GRDB still owns the connection and the transaction; a failed
/// step throws GRDB's `DatabaseError`, so callers see one error type.
///
/// Not `Sendable`: it lives inside one `write` closure. ``cached(_:sql:)`` takes the compiled
/// statement from GRDB's per-connection cache, so a statement is compiled once per connection and
/// kept across transactions (compiling per transaction was ~8 % of the hub's ingest, BENCHMARKS.md);
/// GRDB finalizes it when it closes the connection. ``init(_:sql:)`` compiles a statement of its own,
/// finalized when this object goes.
final class FastStatement {
    private let handle: OpaquePointer
    private let connection: OpaquePointer
    /// GRDB's cached statement when the handle is GRDB's: held so a cache eviction cannot
    /// finalize it while this object uses it.
    private let owner: Statement?
    let sql: String

    /// The statement for `sql` from GRDB's statement cache of this connection.
    static func cached(_ db: Database, sql: String) throws -> FastStatement {
        try FastStatement(db, cached: db.cachedStatement(sql: sql), sql: sql)
    }

    private init(_ db: Database, cached statement: Statement, sql: String) throws {
        guard let connection = db.sqliteConnection else { throw DatabaseError(resultCode: .SQLITE_MISUSE, message: "closed") }
        // A cached statement may come back with the bindings of its last use: every user binds
        // every parameter before stepping, and a reset here leaves it ready.
        sqlite3_reset(statement.sqliteStatement)
        self.handle = statement.sqliteStatement
        self.connection = connection
        self.owner = statement
        // Not `statement.sql`: GRDB trims that with Foundation on every read, which `perf` showed as
        // most of a site's local learner lookup.
        self.sql = sql
    }

    init(_ db: Database, sql: String) throws {
        guard let connection = db.sqliteConnection else { throw DatabaseError(resultCode: .SQLITE_MISUSE, message: "closed") }
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(connection, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else {
            throw DatabaseError(
                resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(connection)), sql: sql)
        }
        self.handle = stmt
        self.connection = connection
        self.owner = nil
        self.sql = sql
    }

    deinit { if owner == nil { sqlite3_finalize(handle) } }

    func bind(_ i: Int32, _ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            _ = utf8.withMemoryRebound(to: CChar.self) {
                sqlite3_bind_text(handle, i, $0.baseAddress, Int32($0.count), CSQLite_TRANSIENT())
            }
        }
    }

    func bind(_ i: Int32, _ value: String?) {
        if let value { bind(i, value) } else { sqlite3_bind_null(handle, i) }
    }

    func bind(_ i: Int32, _ value: Int64?) {
        if let value { sqlite3_bind_int64(handle, i, value) } else { sqlite3_bind_null(handle, i) }
    }

    func bind(_ i: Int32, _ value: Int) { sqlite3_bind_int64(handle, i, Int64(value)) }

    func bind(_ i: Int32, _ value: Data?) {
        guard let value else { sqlite3_bind_null(handle, i); return }
        value.withUnsafeBytes { sqlite3_bind_blob(handle, i, $0.baseAddress, Int32($0.count), CSQLite_TRANSIENT()) }
    }

    func bind(_ i: Int32, _ value: [UInt8]) {
        value.withUnsafeBytes { sqlite3_bind_blob(handle, i, $0.baseAddress, Int32($0.count), CSQLite_TRANSIENT()) }
    }

    /// The current row's columns, valid inside ``forEachRow(_:)``.
    struct Columns {
        let handle: OpaquePointer
        func isNull(_ i: Int32) -> Bool { sqlite3_column_type(handle, i) == SQLITE_NULL }
        func int(_ i: Int32) -> Int { Int(sqlite3_column_int64(handle, i)) }
        func text(_ i: Int32) -> String {
            guard let p = sqlite3_column_text(handle, i) else { return "" }
            return String(decoding: UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(handle, i))), as: UTF8.self)
        }
        func blob(_ i: Int32) -> Data {
            let n = Int(sqlite3_column_bytes(handle, i))
            guard n > 0, let p = sqlite3_column_blob(handle, i) else { return Data() }
            return Data(bytes: p, count: n)
        }
    }

    /// Steps through every result row.
    func forEachRow(_ body: (Columns) throws -> Void) throws {
        defer { sqlite3_reset(handle) }
        while true {
            let rc = sqlite3_step(handle)
            if rc == SQLITE_DONE { return }
            guard rc == SQLITE_ROW else {
                throw DatabaseError(
                    resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(connection)), sql: sql)
            }
            try body(Columns(handle: handle))
        }
    }

    /// Runs the statement to completion.
    /// - Returns: the number of rows it changed.
    @discardableResult
    func execute() throws -> Int {
        defer { sqlite3_reset(handle) }
        var rc = sqlite3_step(handle)
        while rc == SQLITE_ROW { rc = sqlite3_step(handle) }
        guard rc == SQLITE_DONE else {
            throw DatabaseError(
                resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(connection)), sql: sql)
        }
        return Int(sqlite3_changes(connection))
    }
}
