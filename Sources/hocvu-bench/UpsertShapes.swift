import ArgumentParser
import CSQLite
import Foundation

/// How to write many progress rows with the merge's upsert (the rule of `MergeSQL.progress`) on the C
/// API, one transaction each, the same rows: one row per statement; through a temporary table and
/// `INSERT … SELECT`; many rows per statement (multi-row VALUES). The measurement behind the shape of
/// the set-based merge (docs/architecture.md); a plain INSERT per row is the baseline.
struct UpsertShapes {
    let rows: Int
    let rowsPerStatement: Int
    let directory: String

    static let upsert = """
        ON CONFLICT(learner_id, lesson_id) DO UPDATE SET
          percent = max(percent, excluded.percent),
          completed_at = coalesce(min(completed_at, excluded.completed_at), completed_at, excluded.completed_at)
        WHERE excluded.percent > percent
          OR (excluded.completed_at IS NOT NULL AND (completed_at IS NULL OR excluded.completed_at < completed_at))
        """

    enum Shape: String, CaseIterable {
        case plainInsert = "plain INSERT, one row per statement (baseline)"
        case upsertPerRow = "upsert, one row per statement"
        case tempTable = "upsert via a temporary table and INSERT … SELECT"
        case multiRow = "upsert, many rows per statement (VALUES list)"
    }

    /// Seconds per shape; the shapes run in turn `repetitions` times and each keeps its median.
    func run(repetitions: Int) throws -> [(Shape, Double)] {
        let learners = (0..<rows).map { String(format: "learner-%030d", $0 / 20) }
        let lessons = (0..<20).map { String(format: "lesson-%02d", $0) }
        var times = [Shape: [Double]]()
        for _ in 0..<repetitions {
            for shape in Shape.allCases {
                times[shape, default: []].append(try time(shape, learners: learners, lessons: lessons))
            }
        }
        return Shape.allCases.map { s in (s, times[s]!.sorted()[times[s]!.count / 2]) }
    }

    private func time(_ shape: Shape, learners: [String], lessons: [String]) throws -> Double {
        let path = "\(directory)/bench-upsert.sqlite"
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        let raw = try RawSQLite(path: path)
        defer { raw.close() }
        try raw.exec("""
            CREATE TABLE progress (learner_id TEXT NOT NULL, lesson_id TEXT NOT NULL, percent INTEGER NOT NULL,
              completed_at INTEGER, PRIMARY KEY (learner_id, lesson_id)) WITHOUT ROWID;
            CREATE TEMP TABLE incoming (learner_id TEXT, lesson_id TEXT, percent INTEGER, completed_at INTEGER);
            """)
        func bindRow(_ s: OpaquePointer, _ base: Int32, _ i: Int) {
            RawSQLite.bind(s, base, learners[i])
            RawSQLite.bind(s, base + 1, lessons[i % lessons.count])
            RawSQLite.bind(s, base + 2, Int64(100))
            RawSQLite.bind(s, base + 3, Int64(1_700_000_000_000))
        }
        let values = "(?, ?, ?, ?)"
        let t0 = ContinuousClock.now
        try raw.exec("BEGIN")
        switch shape {
        case .plainInsert:
            try raw.insertAll("INSERT INTO progress VALUES \(values)", rows: rows) { s, i in bindRow(s, 1, i) }
        case .upsertPerRow:
            try raw.insertAll("INSERT INTO progress VALUES \(values) \(Self.upsert)", rows: rows) { s, i in bindRow(s, 1, i) }
        case .tempTable:
            var start = 0
            while start < rows {
                let n = min(rowsPerStatement, rows - start)
                try raw.insertAll("INSERT INTO incoming VALUES \(values)", rows: n) { s, i in bindRow(s, 1, start + i) }
                try raw.exec("INSERT INTO progress SELECT * FROM incoming WHERE true \(Self.upsert); DELETE FROM incoming;")
                start += n
            }
        case .multiRow:
            // One statement per size, compiled once (as the store's statement cache does).
            var statements = [Int: OpaquePointer]()
            defer { statements.values.forEach { sqlite3_finalize($0) } }
            var start = 0
            while start < rows {
                let n = min(rowsPerStatement, rows - start)
                if statements[n] == nil {
                    let sql = "INSERT INTO progress VALUES " + Array(repeating: values, count: n).joined(separator: ", ") + " " + Self.upsert
                    var stmt: OpaquePointer?
                    guard sqlite3_prepare_v2(raw.db, sql, -1, &stmt, nil) == SQLITE_OK, let stmt else {
                        throw BenchFailure("upsert shapes: \(String(cString: sqlite3_errmsg(raw.db)))")
                    }
                    statements[n] = stmt
                }
                let s = statements[n]!
                for k in 0..<n { bindRow(s, Int32(4 * k + 1), start + k) }
                guard sqlite3_step(s) == SQLITE_DONE else { throw BenchFailure("upsert shapes: \(String(cString: sqlite3_errmsg(raw.db)))") }
                sqlite3_reset(s)
                start += n
            }
        }
        try raw.exec("COMMIT")
        return (ContinuousClock.now - t0).seconds
    }
}

extension HocVuBench {
    struct Upserts: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "upsert-shapes",
            abstract: "Raw SQLite: progress upserts one row per statement, via a temporary table, or many rows per statement.")

        @Option(help: "Rows written by each shape.")
        var rows = 500_000

        @Option(help: "Rows per statement for the temporary-table and multi-row shapes.")
        var rowsPerStatement = 256

        @Option(help: "Directory for the benchmark database (deleted and recreated).")
        var directory = FileManager.default.temporaryDirectory.path

        @Option(help: "Rounds over all shapes; medians are reported.")
        var repetitions = 3

        func validate() throws {
            guard rows >= 1, (1...4_000).contains(rowsPerStatement), repetitions >= 1 else {
                throw ValidationError("--rows ≥ 1, --rows-per-statement 1…4000, --repetitions ≥ 1")
            }
        }

        func run() throws {
            let results = try UpsertShapes(rows: rows, rowsPerStatement: rowsPerStatement, directory: directory)
                .run(repetitions: repetitions)
            let base = results[0].1
            print("| shape | seconds | rows/s | vs plain INSERT |\n| --- | ---: | ---: | ---: |")
            for (shape, seconds) in results {
                print("| \(shape.rawValue) | \(String(format: "%.2f", seconds)) | \(Int(Double(rows) / seconds)) | \(String(format: "%.2f", base / seconds)) × |")
            }
            print("\(rows) rows, \(rowsPerStatement) rows per statement where it applies; medians of \(repetitions) rounds")
        }
    }
}
