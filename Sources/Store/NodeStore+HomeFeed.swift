public import Foundation
import GRDB
public import Merge

/// Hub side of "records come home": appends, inside the merge transaction, each merged change
/// about a learner whose home commune is not the recording site's to that home site's feed.
struct HomeRouter {
    let communes: [NodeID: Int]
    let home: FastStatement
    let insert: FastStatement
    let db: Database
    var next: [Int: Int64] = [:]
    var fed: Set<Int> = []

    init(_ db: Database, communes: [NodeID: Int]) throws {
        self.db = db
        self.communes = communes
        home = try FastStatement(db, sql: "SELECT home_commune FROM learner WHERE learner_id = ?")
        insert = try FastStatement(db, sql: "INSERT INTO home_feed (commune_code, seq, node_id, body) VALUES (?, ?, ?, ?)")
    }

    mutating func route(_ change: Change, from node: NodeID) throws {
        guard let origin = communes[node] else { return }
        home.bind(1, change.record.learnerID)
        var found: Int?
        try home.forEachRow { c in found = c.isNull(0) ? nil : c.int(0) }
        guard let commune = found, commune != origin else { return }
        let seq: Int64
        if let n = next[commune] {
            seq = n
        } else {
            seq = (try Int64.fetchOne(db, sql: "SELECT max(seq) FROM home_feed WHERE commune_code = ?", arguments: [commune]) ?? 0) + 1
        }
        insert.bind(1, Int64(commune))
        insert.bind(2, seq)
        insert.bind(3, [UInt8](node.bytes))
        insert.bind(4, ChangeCodec.encode([change]))  // a one-change batch body
        try insert.execute()
        next[commune] = seq + 1
        fed.insert(commune)
    }
}

/// One entry of a site's home feed.
public struct HomeFeedEntry: Sendable, Equatable {
    public var seq: UInt64
    /// The site that recorded the change (its LWW tie-break travels with it).
    public var node: NodeID
    public var change: Data
    public init(seq: UInt64, node: NodeID, change: Data) { self.seq = seq; self.node = node; self.change = change }
}

/// What applying home-feed entries did at a site.
public struct HomeFeedReport: Sendable, Equatable {
    public var merged = 0
    public var quarantined = 0
    public var alreadyHeld = 0
    public var cursor: UInt64 = 0
}

extension NodeStore {
    /// Hub: the feed of `commune` after `seq`, at most `limit` entries.
    public func homeFeed(commune: Int, after seq: UInt64, limit: Int = 2_000) throws -> [HomeFeedEntry] {
        try pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT seq, node_id, body FROM home_feed WHERE commune_code = ? AND seq > ? ORDER BY seq LIMIT ?",
                arguments: [commune, Int64(clamping: seq), limit]
            ).compactMap { r in
                NodeID(bytes: r["node_id"]).map { HomeFeedEntry(seq: UInt64(r["seq"] as Int64), node: $0, change: r["body"]) }
            }
        }
    }

    /// Site: the last home-feed entry applied.
    public func homeFeedCursor() throws -> UInt64 {
        try pool.read { db in UInt64(try Int64.fetchOne(db, sql: "SELECT home_feed_seq FROM node") ?? 0) }
    }

    /// Site: merges records about its own learners that other sites recorded (verified by the
    /// caller against the hub's signature), in one transaction with the new cursor. They merge
    /// with their recording site's node id, exactly as at the hub, and do not enter this site's
    /// change log (the hub already holds them). Entries at or below the cursor are skipped.
    public func applyHomeFeed(_ entries: [HomeFeedEntry]) throws -> HomeFeedReport {
        let validator = Validator(curriculum: validatorIndex, now: now())
        let physical = UInt64(max(0, validator.now))
        return try pool.write { db in
            var report = HomeFeedReport()
            var cursor = UInt64(try Int64.fetchOne(db, sql: "SELECT home_feed_seq FROM node") ?? 0)
            var ctx = try LocalWriteContext(db)
            var writer = try MergeWriter(db)
            var facts = FactKeeper(curriculum: validator.curriculum)
            for e in entries {
                guard e.seq > cursor else {
                    report.alreadyHeld += 1
                    continue
                }
                guard e.seq == cursor + 1 else { break }  // a gap: wait for the hub to resend from the cursor
                cursor = e.seq
                let change: Change
                do {
                    let decoded = try ChangeCodec.decode(e.change)
                    guard decoded.count == 1 else { throw DecodeError.invalidValue(field: "home feed entry") }
                    change = decoded[0]
                } catch {
                    try Self.quarantine(
                        db, originNo: nil, seq: e.seq, hlc: .zero, kind: 0, code: "malformed_feed_entry",
                        reason: "home feed entry does not decode: \(error)", body: e.change, at: validator.now)
                    report.quarantined += 1
                    continue
                }
                do {
                    try validator.validate(change.record)
                    _ = try writer.merge(change, from: e.node)
                    try? ctx.clock.observe(remote: change.hlc, now: physical)
                    facts.touch(change.record.learnerID)
                    report.merged += 1
                } catch let error as RecordValidationError {
                    try Self.quarantine(
                        db, originNo: nil, seq: e.seq, hlc: change.hlc, kind: change.record.kind.rawValue,
                        code: error.code, reason: error.description, body: e.change, at: validator.now)
                    report.quarantined += 1
                }
            }
            try facts.flush(db)
            try ctx.persist(db)
            try db.execute(sql: "UPDATE node SET home_feed_seq = ?", arguments: [Int64(cursor)])
            report.cursor = cursor
            return report
        }
    }
}
