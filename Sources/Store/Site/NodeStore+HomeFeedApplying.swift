import Foundation
import GRDB
public import Merge
public import Model

/// What applying home-feed entries did at a site.
public struct HomeFeedReport: Sendable, Equatable {
    public var merged = 0
    public var quarantined = 0
    public var alreadyHeld = 0
    public var cursor: UInt64 = 0
    /// The feed named another commune than the one this site took its first feed for: nothing
    /// applied (a hub bug or a database copied to another commune's PC).
    public var otherCommune: Int?
}

extension NodeStore {
    /// Site: the last home-feed entry applied.
    public func homeFeedCursor() throws -> UInt64 {
        try pool.read { db in UInt64(try Int64.fetchOne(db, sql: "SELECT home_feed_seq FROM node") ?? 0) }
    }

    /// Site with several hub endpoints: the cursor to send `source`, 0 when it counts in another
    /// hub's numbering (each hub process numbers its feeds; re-merging what was held is idempotent).
    /// A cursor of unknown source belongs to the primary (first) endpoint, the one hub of old.
    public func homeFeedCursor(source: String, isPrimary: Bool) throws -> UInt64 {
        try pool.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT home_feed_seq, home_feed_source FROM node") else { return 0 }
            let held: String? = row["home_feed_source"]
            guard held == source || (held == nil && isPrimary) else { return 0 }
            return UInt64(max(0, row["home_feed_seq"] as Int64))
        }
    }

    /// Site: its commune, as named by the first home feed it applied (nil before any).
    public func siteCommune() throws -> Int? {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT commune_code FROM node") }
    }

    /// Site: merges records about its own learners that other sites recorded (verified by the
    /// caller against the hub's signature), in one transaction with the new cursor. They merge
    /// with their recording site's node id, exactly as at the hub, and do not enter this site's
    /// change log (the hub already holds them). Entries at or below the cursor are skipped.
    ///
    /// `hub` is the pinned hub identity: the only writer whose roster entries are accepted.
    /// `commune` is the commune the signed feed is for: the first one is remembered as this
    /// site's commune, and a feed for another is refused whole.
    /// `source`: the hub endpoint the feed came from (sites with several hubs); a feed from another
    /// source than the cursor's starts from 0.
    public func applyHomeFeed(
        _ entries: [HomeFeedEntry], commune: Int? = nil, hub: NodeID? = nil, source: (endpoint: String, isPrimary: Bool)? = nil
    ) throws -> HomeFeedReport {
        let validator = Validator(curriculum: validatorIndex, now: now())
        let physical = UInt64(max(0, validator.now))
        return try pool.write { db in
            var report = HomeFeedReport()
            if let commune {
                let mine = try Int.fetchOne(db, sql: "SELECT commune_code FROM node")
                if let mine, mine != commune {
                    report.otherCommune = commune
                    return report
                }
                if mine == nil { try db.execute(sql: "UPDATE node SET commune_code = ?", arguments: [commune]) }
            }
            var cursor = UInt64(try Int64.fetchOne(db, sql: "SELECT home_feed_seq FROM node") ?? 0)
            if let source {
                let held = try String.fetchOne(db, sql: "SELECT home_feed_source FROM node")
                if held != source.endpoint {
                    // The same rule as homeFeedCursor(source:isPrimary:): another hub's numbering starts at 0.
                    if !(held == nil && source.isPrimary) { cursor = 0 }
                    try db.execute(sql: "UPDATE node SET home_feed_source = ?", arguments: [source.endpoint])
                }
            }
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
                    try validator.checkWriter(of: change.record, writer: e.node, rosterAuthority: hub)
                    _ = try writer.merge(change, from: e.node)
                    try? ctx.clock.observe(remote: change.hlc, now: physical)
                    facts.touch(change.record.learnerID)
                    report.merged += 1
                } catch let error as RecordValidationError {
                    try Self.quarantine(
                        db, originNo: nil, seq: e.seq, hlc: change.hlc, kind: change.record.kind.rawValue,
                        code: error.code, reason: error.description, body: e.change, at: validator.now)
                    report.quarantined += 1
                } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                    // A rule of this site's schema the validator let through: set aside, never wedge the feed.
                    try Self.quarantine(
                        db, originNo: nil, seq: e.seq, hlc: change.hlc, kind: change.record.kind.rawValue,
                        code: "constraint_violation", reason: "the record breaks a database rule: \(error.message ?? "constraint")",
                        body: e.change, at: validator.now)
                    report.quarantined += 1
                }
            }
            facts.touch(writer.setAsideLearners)
            try facts.flush(db)
            try ctx.persist(db)
            try db.execute(sql: "UPDATE node SET home_feed_seq = ?", arguments: [Int64(cursor)])
            report.cursor = cursor
            return report
        }
    }
}
