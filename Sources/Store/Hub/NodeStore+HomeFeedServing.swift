import GRDB
import Merge
public import Model

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
}
