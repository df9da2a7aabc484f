import GRDB
import Merge

/// Hub side of "records come home": appends, inside the merge transaction, each merged change
/// about a learner whose home commune is not the recording site's to that home site's feed.
struct HomeRouter {
    let communes: [NodeID: Int]
    let home: FastStatement
    let insert: FastStatement
    let db: Database
    var next: [Int: Int64] = [:]
    var fed: Set<Int> = []
    /// Home communes read in this transaction (nil: no learner row or no home yet). Only a learner
    /// change moves a home, and it reads again.
    private var homes: [String: Int?] = [:]

    init(_ db: Database, communes: [NodeID: Int]) throws {
        self.db = db
        self.communes = communes
        home = try .cached(db, sql: "SELECT home_commune FROM learner WHERE learner_id = ?")
        insert = try .cached(db, sql: "INSERT INTO home_feed (commune_code, seq, node_id, body) VALUES (?, ?, ?, ?)")
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

    /// Appends one change, recorded by `node`, to `commune`'s feed.
    mutating func append(_ change: Change, from node: NodeID, to commune: Int) throws {
        let seq: Int64
        if let n = next[commune] {
            seq = n
        } else {
            seq = (try Int64.fetchOne(
                db.cachedStatement(sql: "SELECT max(seq) FROM home_feed WHERE commune_code = ?"), arguments: [commune]) ?? 0) + 1
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
