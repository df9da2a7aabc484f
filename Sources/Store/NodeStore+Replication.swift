import Foundation
import Sodium
import Dispatch
import Synchronization
public import Merge
import GRDB

/// Why a whole batch was refused (not stored, not acknowledged as applied).
public enum BatchRefusal: Equatable, Sendable, CustomStringConvertible {
    case badSignature
    /// Same `(origin, seq)` already held under a different batch id: the origin equivocated.
    case equivocation
    case originQuarantined(String)
    /// A batch of our own origin that we never wrote: this database was restored without
    /// rotating its epoch.
    case unknownOwnBatch
    case malformedRange
    /// The batch's `previous_id` is not the id of the origin's batch before it: the origin
    /// rewrote its history. Treated like equivocation (docs/crdt-rules.md).
    case chainBroken
    /// The batch does not extend the origin's contiguous run (a gap below it): not stored;
    /// the sender resends from the `have` it is told.
    case outOfOrder(expectedFirstSeq: UInt64)

    public var description: String {
        switch self {
        case .badSignature: "signature does not verify against the origin's identity key"
        case .equivocation: "origin sent two different batches for the same sequence numbers (equivocation)"
        case .originQuarantined(let why): "origin is quarantined: \(why)"
        case .unknownOwnBatch:
            "batch claims this node's own origin but was never written here: this database was restored from a backup "
                + "without starting a new epoch. At a site, stop hocvu-site and run `hocvu site restored` "
                + "(docs/operations.md, \"Backup and restore\"); a site also starts one by itself at its next contact with the hub"
        case .malformedRange: "batch sequence range is empty, out of range or does not match its change count"
        case .chainBroken: "batch does not chain to the origin's previous batch (history rewritten)"
        case .outOfOrder(let next): "batch does not start at the next sequence number (\(next)); resend from there"
        }
    }

    /// The stable code sent in ACK refusals and used for counters (docs/protocol.md, "Refusal codes").
    public var code: String {
        switch self {
        case .badSignature: "bad_signature"
        case .equivocation: "equivocation"
        case .originQuarantined: "origin_quarantined"
        case .unknownOwnBatch: "unknown_own_batch"
        case .malformedRange: "malformed_range"
        case .chainBroken: "chain_broken"
        case .outOfOrder: "out_of_order"
        }
    }
}

/// What applying remote batches did. Returned after the transaction committed: only then may
/// the caller acknowledge.
public struct ApplyReport: Equatable, Sendable {
    public struct Refused: Equatable, Sendable {
        public let origin: Origin
        public let firstSeq: UInt64
        public let reason: BatchRefusal
    }

    public var appliedBatches = 0
    public var duplicateBatches = 0
    public var mergedChanges = 0
    public var quarantinedChanges = 0
    public var refused: [Refused] = []
    /// Origins newly quarantined in this call (equivocation, broken hash chain): raise an alert.
    public var newlyQuarantinedOrigins: [Origin] = []
    /// Hub: communes whose home feed grew in this call (send them the new entries).
    public var fedCommunes: Set<Int> = []
    /// Learner changes that claimed a home commune other than the one already held, by origin
    /// (merged by the first-claim rule; counted and reported, never silent).
    public var contestedHomeClaims: [Origin] = []

    public init() {}
}

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
        try db.execute(
            sql: """
                INSERT INTO batch (origin_no, first_seq, last_seq, previous_id, batch_id, body, signature, received_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [originNo, Int64(b.firstSeq), Int64(b.lastSeq), b.previousID, id, b.body, b.signature, receivedAt])
    }

    /// Applies remote batches in one transaction: verified, deduplicated, merged. Idempotent:
    /// a batch already held is a no-op. A well-formed but invalid record is quarantined and the
    /// rest of its batch still applies. A hub passes the communes the batches came from as
    /// `heardFrom`, recorded in the same transaction (one commit per round, not two).
    ///
    /// A hub passes `routeHome` (each enrolled site's identity → its commune): every merged change
    /// about a learner whose home commune is another site's is appended to that site's home feed,
    /// in the same transaction.
    public func apply(_ batches: [Batch], heardFrom: Set<Int> = [], routeHome: [NodeID: Int]? = nil) throws -> ApplyReport {
        let validator = Validator(curriculum: validatorIndex, now: now())
        let me = try currentOrigin()
        // Hashing, signature checks and decoding need no lock: do them first, on every core,
        // so the write transaction holds the lock only for SQL.
        let prepared = PreparedBatch.prepareAll(batches, localOrigin: me)
        return try pool.write { db in
            var report = ApplyReport()
            var ctx = try LocalWriteContext(db)
            var writer = try MergeWriter(db)
            var origins = [Origin: OriginState]()
            var facts = FactKeeper(curriculum: validator.curriculum)
            var router = try routeHome.map { try HomeRouter(db, communes: $0) }
            for p in prepared {
                let batch = p.batch
                // Before any arithmetic or Int64 conversion of the peer's numbers.
                guard batch.hasValidRange, !p.countMismatch else {
                    report.refused.append(.init(origin: batch.origin, firstSeq: batch.firstSeq, reason: .malformedRange))
                    continue
                }
                guard p.signatureValid else {
                    report.refused.append(.init(origin: batch.origin, firstSeq: batch.firstSeq, reason: .badSignature))
                    continue
                }
                var o = try origins[batch.origin] ?? Self.originRow(db, batch.origin)
                origins[batch.origin] = o
                /// Equivocation and a broken chain: the origin is quarantined and the batch refused.
                func setOriginAside(_ why: String, _ reason: BatchRefusal) throws {
                    try Self.quarantineOrigin(db, o.no, why)
                    o.quarantine = why
                    origins[batch.origin] = o
                    report.newlyQuarantinedOrigins.append(batch.origin)
                    report.refused.append(.init(origin: batch.origin, firstSeq: batch.firstSeq, reason: reason))
                }
                if let why = o.quarantine {
                    report.refused.append(
                        .init(origin: batch.origin, firstSeq: batch.firstSeq, reason: .originQuarantined(why)))
                    continue
                }
                let id = p.id
                switch try Self.overlap(db, originNo: o.no, batch: batch, id: id) {
                case .duplicate:
                    report.duplicateBatches += 1
                    continue
                case .conflict:
                    if batch.origin == me {
                        report.refused.append(.init(origin: me, firstSeq: batch.firstSeq, reason: .unknownOwnBatch))
                        continue
                    }
                    try setOriginAside("equivocation at seq \(batch.firstSeq)-\(batch.lastSeq)", .equivocation)
                    continue
                case .none:
                    if batch.origin == me {
                        report.refused.append(.init(origin: me, firstSeq: batch.firstSeq, reason: .unknownOwnBatch))
                        continue
                    }
                }
                // Only a batch that extends the contiguous run is stored and merged, and only if
                // it chains to the batch before it. A gap is refused (resent in order later), so a
                // broken chain is always seen before anything of it is merged.
                guard batch.firstSeq == o.contiguous + 1 else {
                    report.refused.append(
                        .init(origin: batch.origin, firstSeq: batch.firstSeq, reason: .outOfOrder(expectedFirstSeq: o.contiguous + 1)))
                    continue
                }
                guard batch.previousID == o.lastBatchID else {
                    try setOriginAside("hash chain broken at seq \(batch.firstSeq)", .chainBroken)
                    continue
                }
                try Self.insertBatch(db, batch, originNo: o.no, id: id, receivedAt: validator.now)
                report.appliedBatches += 1
                try mergeBody(
                    p, originNo: o.no, db: db, writer: &writer, clock: &ctx.clock, validator: validator,
                    report: &report, facts: &facts, router: &router)
                try db.execute(
                    sql: "UPDATE origin SET contiguous_seq = ?, last_batch_id = ? WHERE origin_no = ?",
                    arguments: [Int64(batch.lastSeq), id, o.no])
                o.contiguous = batch.lastSeq
                o.lastBatchID = id
                origins[batch.origin] = o
            }
            try facts.flush(db)
            report.fedCommunes = router?.fed ?? []
            try Self.markHeard(db, heardFrom, at: validator.now)
            try ctx.persist(db)
            return report
        }
    }

    private func mergeBody(
        _ prepared: PreparedBatch, originNo: Int64, db: Database, writer: inout MergeWriter, clock: inout HybridLogicalClock,
        validator: Validator, report: inout ApplyReport, facts: inout FactKeeper, router: inout HomeRouter?
    ) throws {
        let physical = UInt64(max(0, validator.now))
        let batch = prepared.batch
        let changes: [Change]
        switch prepared.changes {
        case .success(let decoded): changes = decoded
        case .failure(let error):
            // Signed by its origin yet undecodable: keep the evidence, block nothing.
            try Self.quarantine(
                db, originNo: originNo, seq: batch.firstSeq, hlc: .zero, kind: 0, code: "malformed_batch",
                reason: "batch body does not decode: \(error)", body: batch.body, at: validator.now)
            report.quarantinedChanges += batch.changeCount
            return
        }
        /// One change into the visible quarantine, with its reason; the rest of the batch goes on.
        func setAside(_ change: Change, seq: UInt64, code: String, reason: String) throws {
            var w = ByteWriter()
            ChangeCodec.encode(change, into: &w)
            try Self.quarantine(
                db, originNo: originNo, seq: seq, hlc: change.hlc, kind: change.record.kind.rawValue,
                code: code, reason: reason, body: Data(w.bytes), at: validator.now)
            report.quarantinedChanges += 1
        }
        for (i, change) in changes.enumerated() {
            let seq = batch.firstSeq + UInt64(i)
            do {
                do { try clock.check(remote: change.hlc, now: physical) } catch {
                    throw RecordValidationError.clockAhead(error.description)
                }
                try validator.validate(change.record)
                switch try writer.merge(change, from: batch.origin.node) {
                case .attemptConflict:
                    facts.touch(change.record.learnerID)  // its best score may have been set aside
                    throw RecordValidationError.attemptConflict(change.record.attemptIDForLog)
                case .homeContested:
                    report.contestedHomeClaims.append(batch.origin)
                case .merged:
                    break
                }
                try? clock.observe(remote: change.hlc, now: physical)
                facts.touch(change.record.learnerID)
                try router?.route(change, from: batch.origin.node)
                report.mergedChanges += 1
            } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                // Defence in depth: a record the validator let through but a schema rule refuses.
                // SQLite undid just that statement; set the change aside instead of failing the
                // whole transaction (which would stop the hub for everyone).
                try setAside(change, seq: seq, code: "constraint_violation",
                             reason: "the record breaks a database rule: \(error.message ?? "constraint")")
            } catch let error as RecordValidationError {
                try setAside(change, seq: seq, code: error.code, reason: error.description)
            }
        }
    }

    /// What apply needs of an origin: its row, whether it is quarantined, and the end of its
    /// contiguous, hash-chained run.
    struct OriginState {
        var no: Int64
        var quarantine: String?
        var contiguous: UInt64
        var lastBatchID: Data
    }

    static func originRow(_ db: Database, _ origin: Origin) throws -> OriginState {
        let epoch = Int64(bitPattern: origin.epoch)
        if let row = try Row.fetchOne(
            db,
            sql: "SELECT origin_no, quarantine_reason, contiguous_seq, last_batch_id FROM origin WHERE node_id = ? AND epoch = ?",
            arguments: [origin.node.bytes, epoch])
        {
            return OriginState(
                no: row["origin_no"], quarantine: row["quarantine_reason"],
                contiguous: UInt64(max(0, row["contiguous_seq"] as Int64)), lastBatchID: row["last_batch_id"] ?? Batch.zeroID)
        }
        try db.execute(sql: "INSERT INTO origin (node_id, epoch) VALUES (?, ?)", arguments: [origin.node.bytes, epoch])
        return OriginState(no: db.lastInsertedRowID, quarantine: nil, contiguous: 0, lastBatchID: Batch.zeroID)
    }

    private enum Overlap { case none, duplicate, conflict }

    /// Stored batches of one origin never overlap, so only the nearest one below `lastSeq` can.
    private static func overlap(_ db: Database, originNo: Int64, batch: Batch, id: Data) throws -> Overlap {
        guard let row = try Row.fetchOne(
            db,
            sql: """
                SELECT first_seq, last_seq, batch_id FROM batch
                WHERE origin_no = ? AND first_seq <= ? ORDER BY first_seq DESC LIMIT 1
                """, arguments: [originNo, Int64(batch.lastSeq)])
        else { return .none }
        let first: Int64 = row["first_seq"]
        let last: Int64 = row["last_seq"]
        if last < Int64(batch.firstSeq) {
            // Also the next batch above must not start inside us (checked by its own first_seq <= lastSeq).
            return .none
        }
        if first == Int64(batch.firstSeq), last == Int64(batch.lastSeq), row["batch_id"] as Data == id {
            return .duplicate
        }
        return .conflict
    }

    private static func quarantineOrigin(_ db: Database, _ originNo: Int64, _ why: String) throws {
        try db.execute(
            sql: "UPDATE origin SET quarantine_reason = ? WHERE origin_no = ? AND quarantine_reason IS NULL",
            arguments: [why, originNo])
    }

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
            try facts.flush(db)
            try ctx.persist(db)
            return resolved
        }
    }
}

/// A batch with the work that needs no database done: its id, its signature check, its
/// decoded changes.
struct PreparedBatch: Sendable {
    let batch: Batch
    let id: Data
    let signatureValid: Bool
    let changes: Result<[Change], DecodeError>
    /// The body decodes, but to another number of changes than the signed range says.
    let countMismatch: Bool

    init(_ batch: Batch, localOrigin: Origin) {
        self.batch = batch
        let header = batch.header
        id = Blake2b.hash(header)
        signatureValid = batch.origin == localOrigin
            || Ed25519.verify(signature: batch.signature, message: header, publicKey: batch.origin.node.bytes)
        changes = Result { () throws(DecodeError) -> [Change] in try ChangeCodec.decode(batch.body) }
        if case .success(let decoded) = changes { countMismatch = decoded.count != batch.changeCount } else { countMismatch = false }
    }

    /// Prepares batches concurrently; results keep the input order.
    static func prepareAll(_ batches: [Batch], localOrigin: Origin) -> [PreparedBatch] {
        guard batches.count > 1 else { return batches.map { PreparedBatch($0, localOrigin: localOrigin) } }
        let slots = Mutex([PreparedBatch?](repeating: nil, count: batches.count))
        DispatchQueue.concurrentPerform(iterations: batches.count) { i in
            let p = PreparedBatch(batches[i], localOrigin: localOrigin)
            slots.withLock { $0[i] = p }
        }
        return slots.withLock { $0.map { $0! } }
    }
}

extension RecordChange {
    /// The attempt id, for integrity reports (never personal data).
    var attemptIDForLog: String {
        if case .attempt(let a) = self { return a.attemptID }
        return "-"
    }
}
