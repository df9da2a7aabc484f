import GRDB
import Merge

/// The write context of one transaction: clock, next sequence number, prepared merge statements.
struct LocalWriteContext {
    var clock: HybridLogicalClock
    var nextSeq: Int64
    let originNo: Int64

    init(_ db: Database) throws {
        guard let row = try Row.fetchOne(db, sql: "SELECT origin_no, hlc, next_seq FROM node") else {
            throw StoreError.notInitialized
        }
        clock = HybridLogicalClock(last: HLCTimestamp(rawValue: UInt64(bitPattern: row["hlc"])))
        nextSeq = row["next_seq"]
        originNo = row["origin_no"]
    }

    func persist(_ db: Database) throws {
        try db.execute(
            sql: "UPDATE node SET hlc = ?, next_seq = ?",
            arguments: [Int64(bitPattern: clock.last.rawValue), nextSeq])
    }
}
