public import Foundation
import GRDB
public import Merge

/// A database restored from a backup is behind the history it once had: the hub may hold more of
/// this node's origin (uploaded by the lost copy) than the backup does, under sequence numbers the
/// backup will reuse for different changes. Sealing or uploading anything more under that origin
/// would be equivocation (a false alarm that quarantines the site) or, worse, silently never sent.
/// So the site checks its history against the hub's at every WELCOME and, when they differ, re-issues
/// everything it holds under a new epoch (docs/operations.md, "Backup and restore").
extension NodeStore {
    /// True when the hub's history of `origin` is not this database's: the hub holds it up to
    /// `seq` ending in batch `batchID`, and this database has no batch ending at `seq` with that id.
    /// The batch id hashes the whole chain before it, so one id compares the whole history.
    public func divergesFromHub(origin: Origin, seq: UInt64, batchID: Data) throws -> Bool {
        guard seq > 0, seq <= ProtocolLimits.maxSequence else { return false }
        return try pool.read { db in
            let id = try Data.fetchOne(
                db,
                sql: """
                    SELECT b.batch_id FROM batch b JOIN origin o USING (origin_no)
                    WHERE o.node_id = ? AND o.epoch = ? AND b.last_seq = ?
                    """, arguments: [origin.node.bytes, Int64(bitPattern: origin.epoch), Int64(seq)])
            return id != batchID
        }
    }

    /// Starts a new epoch and re-issues under it every change of the current origin — those in
    /// sealed batches and those still pending — in their order, with their original clock stamps
    /// (so every merge comes out the same; a change the hub already holds merges as a no-op). The
    /// old origin is retired: never sealed into or uploaded again.
    /// - Returns: the number of changes re-issued.
    @discardableResult
    public func reissueUnderNewEpoch(reason: String) throws -> Int {
        let node = self.node
        let now = now()
        return try pool.write { db in
            let oldNo = try Int64.fetchOne(db, sql: "SELECT origin_no FROM node")!
            var bodies = [Data]()
            let batches = try Row.fetchCursor(
                db, sql: "SELECT body FROM batch WHERE origin_no = ? ORDER BY first_seq", arguments: [oldNo])
            while let row = try batches.next() {
                // Our own batches: written here, so they decode (a failure is a corrupt database).
                for change in try ChangeCodec.decode(row["body"] as Data) {
                    var w = ByteWriter()
                    ChangeCodec.encode(change, into: &w)
                    bodies.append(Data(w.bytes))
                }
            }
            bodies += try Data.fetchAll(db, sql: "SELECT body FROM pending_change ORDER BY seq")
            try db.execute(sql: "DELETE FROM pending_change")
            try db.execute(
                sql: "UPDATE origin SET quarantine_reason = ? WHERE origin_no = ?",
                arguments: ["retired: \(reason); its changes were re-issued under a new epoch", oldNo])
            try Self.startEpoch(db, node: node, now: now)
            let insert = try db.makeStatement(sql: "INSERT INTO pending_change (seq, body) VALUES (?, ?)")
            for (i, body) in bodies.enumerated() { try insert.execute(arguments: [Int64(i + 1), body]) }
            try db.execute(sql: "UPDATE node SET next_seq = ?", arguments: [Int64(bodies.count + 1)])
            return bodies.count
        }
    }

    /// The id of the batch ending at each of `node`'s origins' contiguous end (hub: for WELCOME).
    public func lastBatchIDs(of node: NodeID) throws -> [Origin: Data] {
        try pool.read { db in
            var out = [Origin: Data]()
            for r in try Row.fetchAll(
                db, sql: "SELECT epoch, last_batch_id FROM origin WHERE node_id = ? AND contiguous_seq > 0",
                arguments: [node.bytes])
            {
                if let id = r["last_batch_id"] as Data? { out[Origin(node: node, epoch: UInt64(bitPattern: r["epoch"]))] = id }
            }
            return out
        }
    }
}
