import Foundation
import GRDB
public import Merge
import Model

/// One quarantined change, for operators.
public struct QuarantineEntry: Equatable, Sendable {
    public let id: Int64
    public let origin: Origin?
    public let seq: UInt64?
    public let kind: UInt8
    public let reasonCode: String
    public let reason: String
    public let receivedAt: Int64
}

extension NodeStore {
    static func quarantine(
        _ db: Database, originNo: Int64?, seq: UInt64?, hlc: HLCTimestamp, kind: UInt8, code: String, reason: String,
        body: Data, at: Int64
    ) throws {
        try db.execute(
            sql: """
                INSERT INTO quarantine (origin_no, seq, hlc, kind, reason_code, reason, body, received_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [originNo, seq.map { Int64($0) }, Int64(bitPattern: hlc.rawValue), Int64(kind), code, reason, body, at])
    }

    /// Open quarantine entries, newest first.
    public func quarantine(limit: Int = 100) throws -> [QuarantineEntry] {
        try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT q.*, o.node_id, o.epoch FROM quarantine q LEFT JOIN origin o USING (origin_no)
                    WHERE q.resolved_at IS NULL ORDER BY q.id DESC LIMIT ?
                    """, arguments: [limit]
            ).map { r in
                let origin = (r["node_id"] as Data?).flatMap(NodeID.init(bytes:)).map {
                    Origin(node: $0, epoch: UInt64(bitPattern: r["epoch"] as Int64))
                }
                return QuarantineEntry(
                    id: r["id"], origin: origin, seq: (r["seq"] as Int64?).map(UInt64.init), kind: UInt8(r["kind"] as Int),
                    reasonCode: r["reason_code"], reason: r["reason"], receivedAt: r["received_at"])
            }
        }
    }

    /// Origins set aside for equivocation or a broken hash chain, with the reason.
    public func quarantinedOrigins() throws -> [Origin: String] {
        try pool.read { db in
            var out = [Origin: String]()
            for r in try Row.fetchAll(
                db, sql: "SELECT node_id, epoch, quarantine_reason FROM origin WHERE quarantine_reason IS NOT NULL")
            {
                guard let node = NodeID(bytes: r["node_id"]) else { continue }
                out[Origin(node: node, epoch: UInt64(bitPattern: r["epoch"]))] = r["quarantine_reason"]
            }
            return out
        }
    }

    /// Re-applies quarantined changes whose reason may have gone away (a lesson a newer release
    /// added, a clock that caught up). Those now valid are merged and marked resolved.
    /// - Returns: how many were resolved.
    @discardableResult
    public func retryQuarantine() throws -> Int {
        let validator = Validator(curriculum: validatorIndex, now: now())
        let retryable = [
            "unknown_course", "unknown_lesson", "unknown_quiz", "max_score_mismatch", "answer_count_mismatch",
            "date_in_future", "clock_ahead",
        ]
        let physical = UInt64(max(0, validator.now))
        return try pool.write { db in
            var writer = try MergeWriter(db)
            var ctx = try LocalWriteContext(db)
            var resolved = 0
            var facts = FactKeeper(curriculum: validator.curriculum)
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT q.id, q.hlc, q.body, o.node_id FROM quarantine q JOIN origin o USING (origin_no)
                    WHERE q.resolved_at IS NULL AND q.reason_code IN (\(retryable.map { "'\($0)'" }.joined(separator: ",")))
                    """)
            for r in rows {
                guard let node = NodeID(bytes: r["node_id"]) else { continue }
                let body: Data = r["body"]
                let change: Change? = body.withUnsafeBytes { raw in
                    var reader = ByteReader(raw)
                    return try? ChangeCodec.decodeChange(&reader)
                }
                guard let change else { continue }
                do {
                    // The writer rule again: a retry must never merge what the first try would refuse.
                    try validator.checkWriter(of: change.record, writer: node, rosterAuthority: self.node)
                    try ctx.clock.check(remote: change.hlc, now: physical)
                    try validator.validate(change.record)
                } catch { continue }
                guard try writer.merge(change, from: node) != .attemptConflict else { continue }
                try? ctx.clock.observe(remote: change.hlc, now: physical)
                facts.touch(change.record.learnerID)
                try db.execute(
                    sql: "UPDATE quarantine SET resolved_at = ? WHERE id = ?", arguments: [validator.now, r["id"] as Int64])
                resolved += 1
            }
            facts.touch(writer.setAsideLearners)
            try facts.flush(db)
            try ctx.persist(db)
            return resolved
        }
    }
}
