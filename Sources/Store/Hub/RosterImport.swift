public import Foundation
public import Merge
import GRDB
import Model

/// Reads roster files for `hocvu hub roster import` (docs/roster-format.md): CSV with a header
/// row, or JSON Lines. Each row names one official who must be trained: national ID, full name,
/// role, unit, commune code, and optionally `status` = `active` (default) or `removed`.
public enum RosterImport {
    public enum Format: String, Sendable, CaseIterable {
        case csv
        case jsonLines = "jsonl"

        /// By file name: `.csv` is CSV, anything else JSON Lines.
        public static func guess(path: String) -> Format {
            path.lowercased().hasSuffix(".csv") ? .csv : .jsonLines
        }
    }

    /// One row read: the person (by national ID) and their entry.
    public struct Row: Sendable, Equatable {
        public let line: Int
        public let nationalID: String
        public let entry: RosterEntry

        public init(line: Int, nationalID: String, entry: RosterEntry) {
            self.line = line
            self.nationalID = nationalID
            self.entry = entry
        }
    }

    /// Columns of the CSV header (any order; `status` optional).
    public static let columns = ["national_id", "full_name", "role", "unit", "commune_code", "status"]

    /// Parses a whole file. Bad rows are reported by line number and reason, never echoed (they
    /// hold national IDs and names).
    public static func parse(_ text: String, format: Format) -> (rows: [Row], errors: [EventImport.LineError]) {
        var rows = [Row]()
        var errors = [EventImport.LineError]()
        var lines = EventImport.lines(of: text)
        // Excel writes a byte-order mark; it is not part of the first field.
        if let first = lines.first, first.text.hasPrefix("\u{FEFF}") {
            lines[0].text = first.text.dropFirst()
        }
        var header: [String: Int]?
        if format == .csv {
            guard let first = lines.first else { return ([], []) }
            lines.removeFirst()
            switch splitCSV(first.text) {
            case .success(let names):
                let normalized = names.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
                if let twice = normalized.first(where: { name in normalized.filter { $0 == name }.count > 1 }) {
                    errors.append(.init(line: first.number, reason: "the header names column \(twice) twice"))
                    return ([], errors)
                }
                let missing = columns.dropLast().filter { !normalized.contains($0) }
                guard missing.isEmpty else {
                    errors.append(.init(line: first.number, reason: "the header lacks column(s) \(missing.joined(separator: ", ")); expected \(columns.joined(separator: ","))"))
                    return ([], errors)
                }
                header = Dictionary(normalized.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
            case .failure(let why):
                errors.append(.init(line: first.number, reason: "header: \(why.reason)"))
                return ([], errors)
            }
        }
        var seen = [String: Int]()
        for (number, text) in lines {
            let fields: [String: String]
            if let header {
                switch splitCSV(text) {
                case .failure(let why):
                    errors.append(.init(line: number, reason: why.reason))
                    continue
                case .success(let values):
                    guard values.count == header.count else {
                        errors.append(.init(line: number, reason: "\(values.count) fields; the header has \(header.count)"))
                        continue
                    }
                    fields = header.mapValues { values[$0] }
                }
            } else {
                guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                    errors.append(.init(line: number, reason: "not a JSON object"))
                    continue
                }
                var f = [String: String]()
                for (k, v) in object {
                    if let s = v as? String { f[k] = s } else if let n = v as? NSNumber, !(v is Bool) { f[k] = n.stringValue }
                }
                fields = f
            }
            switch row(fields, line: number) {
            case .success(let r):
                if let earlier = seen[r.nationalID] {
                    errors.append(.init(line: number, reason: "the same national ID is already on line \(earlier) of this file"))
                    continue
                }
                seen[r.nationalID] = number
                rows.append(r)
            case .failure(let e): errors.append(e)
            }
        }
        return (rows, errors)
    }

    static func row(_ f: [String: String], line: Int) -> Result<Row, EventImport.LineError> {
        func fail(_ why: String) -> Result<Row, EventImport.LineError> { .failure(.init(line: line, reason: why)) }
        guard let id = f["national_id"], Identity.isWellFormedNationalID(id) else {
            return fail("national_id must be exactly 12 digits")
        }
        guard let name = f["full_name"], !name.isEmpty else { return fail("full_name is missing") }
        guard let rawRole = f["role"], let role = Role(rawValue: rawRole) else {
            return fail("role must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let unit = f["unit"], !unit.isEmpty else { return fail("unit is missing") }
        guard let code = f["commune_code"].flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) else {
            return fail("commune_code must be a number (the official commune code)")
        }
        let active: Bool
        switch f["status"]?.lowercased() ?? "" {
        case "", "active": active = true
        case "removed": active = false
        default: return fail("status must be active or removed")
        }
        return .success(Row(
            line: line, nationalID: id,
            entry: RosterEntry(fullName: name, role: role, unit: unit, commune: code, active: active)))
    }

    /// One CSV record on one line (RFC 4180 quoting; a quoted field may not span lines).
    static func splitCSV(_ line: Substring) -> Result<[String], CSVError> {
        var out = [String]()
        var field = ""
        var quoted = false
        var i = line.startIndex
        var atFieldStart = true
        while i < line.endIndex {
            let c = line[i]
            if quoted {
                if c == "\"" {
                    let next = line.index(after: i)
                    if next < line.endIndex, line[next] == "\"" {
                        field.append("\"")
                        i = line.index(after: next)
                        continue
                    }
                    quoted = false
                } else {
                    field.append(c)
                }
            } else if c == "\"" && atFieldStart {
                quoted = true
                atFieldStart = false
            } else if c == "," {
                out.append(field)
                field = ""
                atFieldStart = true
            } else if c == "\"" {
                return .failure(CSVError(reason: "a quote inside an unquoted field"))
            } else {
                field.append(c)
                atFieldStart = false
            }
            i = line.index(after: i)
        }
        guard !quoted else { return .failure(CSVError(reason: "a quoted field is not closed on its line")) }
        out.append(field)
        return .success(out)
    }

    struct CSVError: Error, CustomStringConvertible {
        let reason: String
        var description: String { reason }
    }

    /// What an import did.
    public struct Report: Sendable, Equatable {
        public var added = 0
        public var changed = 0
        public var removed = 0
        /// Rows equal to what the hub already holds: nothing written (a re-run changes nothing).
        public var unchanged = 0
        public var errors: [EventImport.LineError] = []
        /// Communes whose sites will receive changes through their home feed.
        public var communes = Set<Int>()
    }
}

extension NodeStore {
    /// Hub: records roster rows, each as a roster change written by this node (the only writer
    /// of rosters), merged by the same rule as everywhere, and appended to the home feed of the
    /// commune it names (and of the commune it leaves, on a move), in transactions of `chunk`
    /// rows. A row equal to what is held writes nothing, so running the same file again is a
    /// no-op. A row that breaks a rule is reported by line and the rest go on.
    public func importRoster(_ rows: [RosterImport.Row], chunk: Int = 5_000) throws -> RosterImport.Report {
        var report = RosterImport.Report()
        let node = self.node
        for part in stride(from: 0, to: rows.count, by: max(1, chunk)) {
            let slice = rows[part..<min(rows.count, part + max(1, chunk))]
            let validator = Validator(curriculum: validatorIndex, now: now())
            let physical = UInt64(max(0, validator.now))
            report = try pool.write { db in
                var r = report
                var ctx = try LocalWriteContext(db)
                var writer = try MergeWriter(db)
                var facts = FactKeeper(curriculum: validator.curriculum)
                var router = try HomeRouter(db, communes: [:])
                var written = 0
                for row in slice {
                    let learnerID = Identity.learnerID(nationalID: row.nationalID)
                    let held = try RosterRow.fetch(db, id: learnerID)
                    // Equal to what is held, or removing someone on no roster: nothing to write.
                    if held?.entry.value == row.entry || (!row.entry.active && !(held?.entry.value.active ?? false)) {
                        r.unchanged += 1
                        continue
                    }
                    let stamp: HLCTimestamp
                    do { stamp = try ctx.clock.tick(now: physical) } catch let e as ClockError { throw StoreError.clock(e.description) }
                    let change = Change(
                        hlc: stamp,
                        record: .roster(RosterChange(learnerID: learnerID, nationalID: row.nationalID, entry: row.entry)))
                    do {
                        try validator.validate(change.record)
                    } catch let error as RecordValidationError {
                        r.errors.append(.init(line: row.line, reason: error.description))
                        continue
                    }
                    do {
                        _ = try writer.merge(change, from: node)
                    } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                        // Defence in depth: SQLite undid just that statement; report the row, go on.
                        r.errors.append(.init(line: row.line, reason: "the row breaks a database rule (\(error.message ?? "constraint"))"))
                        continue
                    }
                    facts.touch(learnerID)
                    var communes: Set<Int> = [row.entry.commune]
                    if let was = held?.entry.value.commune { communes.insert(was) }
                    for c in communes.sorted() { try router.append(change, from: node, to: c) }
                    r.communes.formUnion(communes)
                    written += 1
                    let wasOn = held?.entry.value.active ?? false
                    if !row.entry.active { r.removed += 1 } else if !wasOn { r.added += 1 } else { r.changed += 1 }
                }
                try router.flush()
                facts.touch(writer.setAsideLearners)
                try facts.flush(db)
                try ctx.persist(db)
                if written > 0 {
                    // Tells a running hub (another process) to push the new feed entries now.
                    try db.execute(
                        sql: "INSERT INTO roster_import (imported_at, changes) VALUES (?, ?)",
                        arguments: [validator.now, written])
                }
                return r
            }
        }
        report.errors.sort { $0.line < $1.line }
        return report
    }

    /// Hub: the last roster import's id (0 for none): a running hub pushes home feeds when it moves.
    public func lastRosterImport() throws -> Int64 {
        try pool.read { db in try Int64.fetchOne(db, sql: "SELECT max(id) FROM roster_import") ?? 0 }
    }
}
