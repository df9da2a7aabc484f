import GRDB
import Merge

/// Hub side of "records come home": appends, inside the merge transaction, each merged change
/// about a learner whose home commune is not the recording site's to that home site's feed.
struct HomeRouter {
    let communes: [NodeID: Int]
    let home: FastStatement
    let db: Database
    private var pending: [Row] = []
    var next: [Int: Int64] = [:]
    var fed: Set<Int> = []
    /// Home communes read in this transaction (nil: no learner row or no home yet). Only a learner
    /// change moves a home, and it reads again.
    private var homes: [String: Int?] = [:]

    init(_ db: Database, communes: [NodeID: Int]) throws {
        self.db = db
        self.communes = communes
        home = try .cached(db, sql: "SELECT home_commune FROM learner WHERE learner_id = ?")
    }

    mutating func route(_ change: Change, from node: NodeID) throws {
        guard let commune = try destination(of: change, from: node) else { return }
        try append(change, from: node, to: commune)
    }

    /// The home feed `change` belongs in, as the learner's home stands now: nil when the learner
    /// has no home yet, it is the recording site's own commune, or `node` is not an enrolled site.
    /// The set-based merge asks when the change arrives and appends once it knows the change merged.
    mutating func destination(of change: Change, from node: NodeID) throws -> Int? {
        guard let origin = communes[node] else { return nil }
        let learner = change.record.learnerID
        let found: Int?
        if case .learner = change.record {
            found = try lookUp(learner)
        } else if let known = homes[learner] {
            found = known
        } else {
            found = try lookUp(learner)
        }
        guard let commune = found, commune != origin else { return nil }
        return commune
    }

    private mutating func lookUp(_ learner: String) throws -> Int? {
        home.bind(1, learner)
        var found: Int?
        try home.forEachRow { c in found = c.isNull(0) ? nil : c.int(0) }
        homes[learner] = .some(found)
        return found
    }

    /// Appends one change, recorded by `node`, to `commune`'s feed. Held until ``flush()``, which
    /// writes them 256 per statement (``MergeSet/write``) and must run before the commit; nothing is
    /// written mid-transaction, so a change's own error handling never meets a feed write's.
    mutating func append(_ change: Change, from node: NodeID, to commune: Int) throws {
        // The one read: the feed's next sequence number, once per commune and transaction.
        let seq: Int64
        if let n = next[commune] {
            seq = n
        } else {
            seq = (try Int64.fetchOne(
                db.cachedStatement(sql: "SELECT max(seq) FROM home_feed WHERE commune_code = ?"), arguments: [commune]) ?? 0) + 1
        }
        pending.append(Row(commune: Int64(commune), seq: seq, node: [UInt8](node.bytes), body: ChangeCodec.encode([change])))  // a one-change batch body
        next[commune] = seq + 1
        fed.insert(commune)
    }

    /// Writes the entries appended since the last flush.
    mutating func flush() throws {
        guard !pending.isEmpty else { return }
        try MergeSet.write(
            db, rows: pending, columns: 4,
            sql: { "INSERT INTO home_feed (commune_code, seq, node_id, body) VALUES \(MergeSQL.placeholders(rows: $0, columns: 4))" },
            bind: { r, s, i in
                s.bind(i, r.commune)
                s.bind(i + 1, r.seq)
                s.bind(i + 2, r.node)
                s.bind(i + 3, r.body)
            }, returned: nil)
        pending.removeAll(keepingCapacity: true)
    }

    private struct Row {
        let commune: Int64
        let seq: Int64
        let node: [UInt8]
        let body: [UInt8]
    }
}
