import Foundation
import GRDB
public import Merge
public import Model

/// What this node holds and what a peer lacks: the version vector and the batches to send.
extension NodeStore {
    /// This node's knowledge: per origin, the highest sequence number with nothing missing below.
    public func versionVector() throws -> VersionVector {
        try pool.read { db in
            var vv = VersionVector()
            for row in try Row.fetchAll(
                db, sql: "SELECT node_id, epoch, contiguous_seq FROM origin WHERE contiguous_seq > 0")
            {
                guard let node = NodeID(bytes: row["node_id"]) else { continue }
                vv[Origin(node: node, epoch: UInt64(bitPattern: row["epoch"]))] = UInt64(row["contiguous_seq"] as Int64)
            }
            return vv
        }
    }

    /// The part of ``versionVector()`` about `nodes`' origins (every epoch), read through the
    /// origin table's `(node_id, epoch)` index: a hub holds thousands of sites' origins and answers
    /// each HELLO and each upload with one site's part, so reading them all each time made a
    /// fleet's reconnection quadratic in the number of sites.
    public func versionVector(of nodes: some Sequence<NodeID>) throws -> VersionVector {
        try pool.read { db in
            var vv = VersionVector()
            let statement = try db.cachedStatement(
                sql: "SELECT epoch, contiguous_seq FROM origin WHERE node_id = ? AND contiguous_seq > 0")
            for node in nodes {
                let rows = try Row.fetchCursor(statement, arguments: [node.bytes])
                while let row = try rows.next() {
                    vv[Origin(node: node, epoch: UInt64(bitPattern: row[0]))] = UInt64(row[1] as Int64)
                }
            }
            return vv
        }
    }

    /// Batches a peer with version vector `peer` lacks, oldest first per origin, up to
    /// `maxBytes` of bodies (at least one batch). Quarantined origins are not forwarded.
    public func batches(
        after peer: VersionVector, maxBytes: Int = 64 << 20, including: (Origin) -> Bool = { _ in true }
    ) throws -> [Batch] {
        try pool.read { db in
            var out = [Batch]()
            var bytes = 0
            let origins = try Row.fetchAll(
                db, sql: "SELECT origin_no, node_id, epoch FROM origin WHERE quarantine_reason IS NULL ORDER BY origin_no")
            for o in origins {
                guard let node = NodeID(bytes: o["node_id"]) else { continue }
                let origin = Origin(node: node, epoch: UInt64(bitPattern: o["epoch"]))
                guard including(origin) else { continue }
                let rows = try Row.fetchCursor(
                    db,
                    sql: """
                        SELECT first_seq, last_seq, previous_id, body, signature FROM batch
                        WHERE origin_no = ? AND last_seq > ? ORDER BY first_seq
                        """, arguments: [o["origin_no"] as Int64, Int64(clamping: peer[origin])])
                while let r = try rows.next() {
                    let b = Batch(
                        origin: origin, firstSeq: UInt64(r["first_seq"] as Int64), lastSeq: UInt64(r["last_seq"] as Int64),
                        previousID: r["previous_id"], body: r["body"], signature: r["signature"])
                    if !out.isEmpty && bytes + b.body.count > maxBytes { return out }
                    out.append(b)
                    bytes += b.body.count
                }
            }
            return out
        }
    }

    /// Batches of this node's own origins (all epochs) that `peer` lacks, up to `maxBytes`.
    public func ownBatches(after peer: VersionVector, maxBytes: Int) throws -> [Batch] {
        let mine = node
        return try batches(after: peer, maxBytes: maxBytes) { $0.node == mine }
    }
}
