public import Foundation
import GRDB
import Merge
import Model

extension EventImport {
    /// One committed transaction of an import: the file lines it covered and what became of them.
    /// Reported only after the commit returned, so a line counted here is on disk.
    public struct Commit: Sendable, Equatable {
        /// File lines covered (blank lines included), e.g. 1...500.
        public let lines: ClosedRange<Int>
        /// Lines recorded by this transaction.
        public let recorded: Int
        /// Lines skipped: recorded by an earlier run (the journal).
        public let alreadyImported: Int
        /// Lines refused, in line order: by this transaction, or on an earlier run (``LineError/earlier``).
        public let errors: [LineError]
    }

    /// What an import did.
    public struct Report: Sendable, Equatable {
        /// Lines recorded by this run.
        public var recorded = 0
        /// Lines skipped because an earlier run recorded them.
        public var alreadyImported = 0
        /// Refused lines in line order: malformed, invalid now, or refused on an earlier run.
        public var errors: [LineError] = []
        /// The last file line of the last committed transaction (0: none).
        public var committedThrough = 0
        /// Of ``errors``, the lines refused on an earlier run and not tried again.
        public var refusedEarlier: Int { errors.filter(\.earlier).count }
    }

    /// An import that stopped on an error other than a bad line: a full disk, an I/O error, a
    /// kill. Every transaction before ``failedLines`` is committed (and was reported); the one
    /// covering ``failedLines`` was rolled back whole. Running the same file again continues.
    public struct Stopped: Error, Sendable, CustomStringConvertible {
        /// The database file.
        public let path: String
        /// The last file line committed by this run (0: none).
        public let committedThrough: Int
        /// The lines of the transaction that was rolled back.
        public let failedLines: ClosedRange<Int>
        /// Bytes free to this process on the filesystem holding the database (statvfs), when the
        /// error was a full disk.
        public let freeBytes: UInt64?
        /// The underlying error, as text.
        public let cause: String

        public var isDiskFull: Bool { freeBytes != nil }

        public var description: String {
            let committed =
                committedThrough == 0
                ? "Nothing was committed by this run."
                : "Lines 1–\(committedThrough) are committed (by this run or an earlier one)."
            let failed = "lines \(failedLines.lowerBound)–\(failedLines.upperBound) were rolled back: none of them is recorded"
            if let freeBytes {
                return "disk full: cannot write \(path) (\(EventImport.byteCount(freeBytes)) free on the filesystem "
                    + "holding \((path as NSString).deletingLastPathComponent), by statvfs); \(failed). \(committed) "
                    + "Free some space, then run the same import again: committed lines are skipped, the rest is "
                    + "recorded once."
            }
            return "import stopped: \(failed) (\(cause)). \(committed) Run the same import again once this is "
                + "resolved: committed lines are skipped, the rest is recorded once."
        }
    }

    /// Bytes as the operator reads them: "512 B", "12.0 KiB", "3.4 MiB", "1.2 GiB".
    public static func byteCount(_ n: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(n), u = 0
        while v >= 1024, u < units.count - 1 { v /= 1024; u += 1 }
        return u == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[u])
    }
}

extension NodeStore {
    /// True when `error` is SQLite's "database or disk is full" (SQLITE_FULL, error 13).
    public static func isDiskFull(_ error: any Error) -> Bool {
        (error as? DatabaseError)?.resultCode == .SQLITE_FULL
    }

    /// "disk full: cannot write PATH (N free on the filesystem holding DIR, by statvfs)": what a
    /// daemon logs and shows in status when a write to this database failed for want of space.
    public func diskFullDescription() -> String {
        let free = Self.freeBytes(nearDatabaseAt: path).map(EventImport.byteCount) ?? "unknown space"
        return "disk full: cannot write \(path) (\(free) free on the filesystem holding "
            + "\((path as NSString).deletingLastPathComponent), by statvfs)"
    }

    /// Bytes available to this process on the filesystem holding `path` (statvfs of its
    /// directory), or nil when that cannot be read.
    public static func freeBytes(nearDatabaseAt path: String) -> UInt64? {
        var dir = (path as NSString).deletingLastPathComponent
        if dir.isEmpty { dir = "." }
        var st = statvfs()
        guard statvfs(dir, &st) == 0 else { return nil }
        return UInt64(st.f_bavail) * UInt64(st.f_frsize)
    }

    /// Imports JSON Lines (docs/import-format.md), **idempotently**: each line is decided once,
    /// the first time an import reaches it, and a journal row saying so commits in the same
    /// transaction as its records. Running the same file again (after a kill, a full disk, or by
    /// mistake) skips every line already recorded and re-reports the lines refused then; a file
    /// that grew by appended lines records only the new ones.
    ///
    /// Lines are recorded in transactions of `chunk` non-blank lines; `onCommit` is called after
    /// each transaction commits (the CLI prints "lines 1–500 committed"), never before. A
    /// transaction holding an invalid event is retried line by line inside the same transaction
    /// (savepoints), so a bad line never costs the good ones.
    ///
    /// - Parameters:
    ///   - retryRefused: try again the lines an earlier run refused (e.g. the release they need
    ///     has arrived since) instead of re-reporting them.
    /// - Throws: ``EventImport/Stopped`` when a transaction fails for another reason than a bad
    ///   line (a full disk: ``EventImport/Stopped/isDiskFull``); whatever `onCommit` throws.
    @discardableResult
    public func runImport(
        _ text: String, chunk: Int = 500, retryRefused: Bool = false,
        onCommit: (EventImport.Commit) throws -> Void = { _ in }
    ) throws -> EventImport.Report {
        precondition(chunk >= 1, "chunk must be at least 1")
        let node = self.node
        let path = self.path
        var report = EventImport.Report()
        var keys = EventImport.LineChain()
        let lines = EventImport.lines(of: text)
        var start = 0
        var previousEnd = 0
        while start < lines.count {
            let group = lines[start..<min(start + chunk, lines.count)]
            start += group.count
            let covered = (previousEnd + 1)...group.last!.number
            let items = group.map { l in
                (line: l.number, key: keys.key(of: l.text.utf8), parsed: EventImport.parse(l.text, line: l.number))
            }
            let validator = Validator(curriculum: validatorIndex, now: now())
            let commit: EventImport.Commit
            do {
                commit = try pool.write { db in
                    try Self.importChunk(items, lines: covered, retryRefused: retryRefused, db: db, node: node,
                                         validator: validator)
                }
            } catch {
                let free = Self.isDiskFull(error) ? Self.freeBytes(nearDatabaseAt: path) ?? 0 : nil
                throw EventImport.Stopped(
                    path: path, committedThrough: previousEnd, failedLines: covered, freeBytes: free,
                    cause: String(describing: error))
            }
            previousEnd = covered.upperBound
            report.recorded += commit.recorded
            report.alreadyImported += commit.alreadyImported
            report.errors += commit.errors
            report.committedThrough = previousEnd
            try onCommit(commit)
        }
        return report
    }

    /// One transaction of an import: look each line up in the journal, record the rest, journal them.
    private static func importChunk(
        _ items: [(line: Int, key: Data, parsed: Result<LocalEvent, EventImport.LineError>)],
        lines: ClosedRange<Int>, retryRefused: Bool, db: Database, node: NodeID, validator: Validator
    ) throws -> EventImport.Commit {
        let lookup = try db.cachedStatement(sql: "SELECT refused FROM import_line WHERE line_key = ?")
        let journal = try db.cachedStatement(
            sql: """
                INSERT INTO import_line (line_key, refused, imported_at) VALUES (?, ?, ?)
                ON CONFLICT(line_key) DO UPDATE SET refused = excluded.refused, imported_at = excluded.imported_at
                """)
        func note(_ key: Data, refused: String?) throws {
            try journal.execute(arguments: [key, refused, validator.now])
        }
        var errors = [EventImport.LineError]()
        var skipped = 0
        var todo = [(line: Int, key: Data, event: LocalEvent)]()
        for item in items {
            switch item.parsed {
            case .failure(let e):
                // Malformed lines fail the same way every time: reported, not journaled.
                errors.append(e)
            case .success(let event):
                if let row = try Row.fetchOne(lookup, arguments: [item.key]) {
                    if let reason = row["refused"] as String? {
                        if !retryRefused {
                            errors.append(.init(line: item.line, reason: reason, earlier: true))
                            continue
                        }
                    } else {
                        skipped += 1
                        continue
                    }
                }
                todo.append((item.line, item.key, event))
            }
        }
        var recorded = 0
        do {
            // Fast path: the whole transaction's events in one go.
            try db.inSavepoint {
                _ = try record(todo.map(\.event), in: db, node: node, validator: validator)
                for t in todo { try note(t.key, refused: nil) }
                return .commit
            }
            recorded = todo.count
        } catch is RecordValidationError {
            // Some event is invalid: line by line, in order, each in its own savepoint. A refusal is
            // journaled too, so a re-run decides the line the same way (docs/import-format.md).
            for t in todo {
                do {
                    try db.inSavepoint {
                        _ = try record([t.event], in: db, node: node, validator: validator)
                        try note(t.key, refused: nil)
                        return .commit
                    }
                    recorded += 1
                } catch let e as RecordValidationError {
                    try note(t.key, refused: e.description)
                    errors.append(.init(line: t.line, reason: e.description))
                }
            }
        }
        return EventImport.Commit(
            lines: lines, recorded: recorded, alreadyImported: skipped, errors: errors.sorted { $0.line < $1.line })
    }

    /// Imports JSON Lines (see ``runImport(_:chunk:retryRefused:onCommit:)``): the lines recorded
    /// by this run, and the refused ones with their numbers and reasons.
    public func importEvents(_ text: String, chunk: Int = 500) throws -> (recorded: Int, errors: [EventImport.LineError]) {
        let r = try runImport(text, chunk: chunk)
        return (r.recorded, r.errors)
    }

    /// Lines in the import journal: (recorded, refused). For status and tests.
    public func importJournalCounts() throws -> (recorded: Int, refused: Int) {
        try pool.read { db in
            let row = try Row.fetchOne(
                db, sql: "SELECT count(*) - count(refused) AS ok, count(refused) AS bad FROM import_line")!
            return (row["ok"], row["bad"])
        }
    }
}
