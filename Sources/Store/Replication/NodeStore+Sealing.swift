import Foundation
import GRDB
import Merge
import Model
import Sodium

extension NodeStore {
    /// Seals local changes not yet in a batch into signed batches of at most `maxChanges`.
    /// - Returns: the number of batches sealed.
    @discardableResult
    public func sealPending(maxChanges: Int = 2_000) throws -> Int {
        let identity = self.identity
        let node = self.node
        let received = now()
        return try pool.write { db in
            let originRow = try Row.fetchOne(
                db,
                sql: """
                    SELECT o.origin_no, o.epoch, o.contiguous_seq, o.last_batch_id
                    FROM node n JOIN origin o USING (origin_no)
                    """)!
            let originNo: Int64 = originRow["origin_no"]
            let origin = Origin(node: node, epoch: UInt64(bitPattern: originRow["epoch"]))
            var previous: Data = originRow["last_batch_id"] ?? Batch.zeroID
            var sealed = 0
            while true {
                let rows = try Row.fetchAll(
                    db, sql: "SELECT seq, body FROM pending_change ORDER BY seq LIMIT ?", arguments: [maxChanges])
                guard let first = rows.first else { break }
                let firstSeq: Int64 = first["seq"]
                // Pending bodies are single encoded changes: the batch body is their count then them.
                var w = ByteWriter(capacity: rows.count * 96)
                w.varint(UInt64(rows.count))
                for r in rows { w.raw([UInt8](r["body"] as Data)) }
                let body = Data(w.bytes)
                let last = UInt64(firstSeq) + UInt64(rows.count) - 1
                let header = Batch.header(
                    origin: origin, firstSeq: UInt64(firstSeq), lastSeq: last, previousID: previous, body: body)
                let batch = Batch(
                    origin: origin, firstSeq: UInt64(firstSeq), lastSeq: last, previousID: previous, body: body,
                    signature: identity.sign(header))
                let id = batch.id
                try Self.insertBatch(db, batch, originNo: originNo, id: id, receivedAt: received)
                try db.execute(
                    sql: "UPDATE origin SET contiguous_seq = ?, last_batch_id = ? WHERE origin_no = ?",
                    arguments: [Int64(last), id, originNo])
                try db.execute(sql: "DELETE FROM pending_change WHERE seq <= ?", arguments: [Int64(last)])
                previous = id
                sealed += 1
            }
            return sealed
        }
    }

    static func insertBatch(_ db: Database, _ b: Batch, originNo: Int64, id: Data, receivedAt: Int64) throws {
        // Cached: once per batch on the hub's apply path, compiling it each time showed in `perf`.
        try db.cachedStatement(
            sql: """
                INSERT INTO batch (origin_no, first_seq, last_seq, previous_id, batch_id, body, signature, received_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(
            arguments: [originNo, Int64(b.firstSeq), Int64(b.lastSeq), b.previousID, id, b.body, b.signature, receivedAt])
    }
}
