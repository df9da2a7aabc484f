import Foundation
public import Model
import Sodium
import Dispatch
import Synchronization
public import Merge
import GRDB

extension NodeStore {
    /// Applies remote batches in one transaction: verified, deduplicated, merged. Idempotent:
    /// a batch already held is a no-op. A well-formed but invalid record is quarantined and the
    /// rest of its batch still applies. A hub passes the communes the batches came from as
    /// `heardFrom`, recorded in the same transaction (one commit per round, not two).
    ///
    /// A hub passes `routeHome` (each enrolled site's identity → its commune): every merged change
    /// about a learner whose home commune is another site's is appended to that site's home feed,
    /// in the same transaction.
    public func apply(_ batches: [Batch], heardFrom: Set<Int> = [], routeHome: [NodeID: Int]? = nil) throws -> ApplyReport {
        try apply(batches, heardFrom: heardFrom, routeHome: routeHome, path: .set)
    }

    /// How the hot record kinds are written: many rows per statement (``MergeSet``), or one
    /// change at a time (``MergeWriter``), the reference the set path is
    /// tested against and its fallback when a database rule refuses a row. Chosen by tests and
    /// by the merge benchmark (which measures both in one run); the daemons always use `.set`.
    @_spi(Benchmarks) public enum MergePath: Sendable { case set, perChange }

    @_spi(Benchmarks) public func apply(_ batches: [Batch], heardFrom: Set<Int> = [], routeHome: [NodeID: Int]? = nil, path: MergePath) throws -> ApplyReport {
        // Hashing, signature checks and decoding need no lock: do them first, on every core,
        // so the write transaction holds the lock only for SQL.
        let prepared = PreparedBatch.prepareAll(batches, localOrigin: try currentOrigin())
        return try apply(prepared: prepared, heardFrom: heardFrom, routeHome: routeHome, path: path)
    }

    /// Applies batches already prepared (``PreparedBatch/prepareAll(_:localOrigin:)``): a hub on a
    /// shared log checks each batch once, for the log and for its own store.
    public func apply(prepared: [PreparedBatch], heardFrom: Set<Int> = [], routeHome: [NodeID: Int]? = nil) throws -> ApplyReport {
        try apply(prepared: prepared, heardFrom: heardFrom, routeHome: routeHome, path: .set)
    }

    private func apply(prepared: [PreparedBatch], heardFrom: Set<Int>, routeHome: [NodeID: Int]?, path: MergePath) throws -> ApplyReport {
        let validator = Validator(curriculum: validatorIndex, now: now())
        let me = try currentOrigin()
        do {
            return try apply(prepared, me: me, validator: validator, heardFrom: heardFrom, routeHome: routeHome, path: path)
        } catch is MergeSet.NeedsPerChangePath {
            // Rolled back whole: again, change by change, so only the offending change is set aside.
            return try apply(prepared, me: me, validator: validator, heardFrom: heardFrom, routeHome: routeHome, path: .perChange)
        }
    }

    private func apply(
        _ prepared: [PreparedBatch], me: Origin, validator: Validator, heardFrom: Set<Int>, routeHome: [NodeID: Int]?,
        path: MergePath
    ) throws -> ApplyReport {
        try pool.write { db in
            var report = ApplyReport()
            var ctx = try LocalWriteContext(db)
            var writer = try MergeWriter(db)
            var set: MergeSet? = path == .set ? MergeSet() : nil
            var origins = [Origin: OriginState]()
            var facts = FactKeeper(curriculum: validator.curriculum)
            var router = try routeHome.map { try HomeRouter(db, communes: $0) }
            for p in prepared {
                let batch = p.batch
                var o = OriginState(no: 0, quarantine: nil, contiguous: 0, lastBatchID: Batch.zeroID)
                let admission = try BatchAdmission.decide(
                    batch, id: p.id, signatureValid: p.signatureValid, countMismatch: p.countMismatch, isOwnOrigin: batch.origin == me,
                    head: {
                        o = try origins[batch.origin] ?? Self.originRow(db, batch.origin)
                        origins[batch.origin] = o
                        return .init(contiguous: o.contiguous, lastBatchID: o.lastBatchID, quarantine: o.quarantine)
                    }, nearest: { try Self.nearestBatch(db, originNo: o.no, below: batch.lastSeq) })
                switch admission {
                case .accept:
                    break
                case .duplicate:
                    report.duplicateBatches += 1
                    continue
                case .refuse(let reason):
                    report.refused.append(.init(origin: batch.origin, firstSeq: batch.firstSeq, reason: reason))
                    continue
                case .quarantineOrigin(let why, let reason):
                    // Equivocation and a broken chain: the origin is quarantined and the batch refused.
                    try Self.quarantineOrigin(db, o.no, why)
                    o.quarantine = why
                    origins[batch.origin] = o
                    report.newlyQuarantinedOrigins.append(batch.origin)
                    report.refused.append(.init(origin: batch.origin, firstSeq: batch.firstSeq, reason: reason))
                    continue
                }
                let id = p.id
                try Self.insertBatch(db, batch, originNo: o.no, id: id, receivedAt: validator.now)
                report.appliedBatches += 1
                try mergeBody(
                    p, originNo: o.no, db: db, writer: &writer, set: &set, clock: &ctx.clock, validator: validator,
                    report: &report, facts: &facts, router: &router)
                try db.cachedStatement(sql: "UPDATE origin SET contiguous_seq = ?, last_batch_id = ? WHERE origin_no = ?")
                    .execute(arguments: [Int64(batch.lastSeq), id, o.no])
                o.contiguous = batch.lastSeq
                o.lastBatchID = id
                origins[batch.origin] = o
            }
            if let set {
                try Self.flush(set, db: db, writer: &writer, validator: validator, report: &report, facts: &facts, router: &router)
            }
            facts.touch(writer.setAsideLearners)
            try facts.flush(db)
            try router?.flush()
            report.fedCommunes = router?.fed ?? []
            try Self.markHeard(db, heardFrom, at: validator.now)
            try ctx.persist(db)
            return report
        }
    }

    /// Writes what the set-based path held back, then does for each attempt what the per-change path
    /// does when it merges one: facts, home feed, counts, or the quarantine for a conflict.
    private static func flush(
        _ set: MergeSet, db: Database, writer: inout MergeWriter, validator: Validator,
        report: inout ApplyReport, facts: inout FactKeeper, router: inout HomeRouter?
    ) throws {
        let outcomes = try set.flush(writer: &writer)
        for i in outcomes.indices {
            let a = set.attempts[i]
            switch outcomes[i] {
            case .conflict:
                facts.touch(a.change.record.learnerID)  // its best score may have been set aside
                let error = RecordValidationError.attemptConflict(a.change.record.attemptIDForLog)
                try quarantine(a.change, db: db, originNo: a.originNo, seq: a.seq, code: error.code, reason: error.description, at: validator.now)
                report.quarantinedChanges += 1
                continue
            case .merged:
                facts.touch(a.change.record)
            case .unchanged:
                break
            }
            if let to = a.feedTo { try router?.append(a.change, from: a.node, to: to) }
            report.mergedChanges += 1
        }
    }

    /// One change into the visible quarantine, with its reason; the rest of its batch goes on.
    private static func quarantine(
        _ change: Change, db: Database, originNo: Int64, seq: UInt64, code: String, reason: String, at now: Int64
    ) throws {
        var w = ByteWriter()
        ChangeCodec.encode(change, into: &w)
        try quarantine(
            db, originNo: originNo, seq: seq, hlc: change.hlc, kind: change.record.kind.rawValue,
            code: code, reason: reason, body: Data(w.bytes), at: now)
    }

    private func mergeBody(
        _ prepared: PreparedBatch, originNo: Int64, db: Database, writer: inout MergeWriter, set: inout MergeSet?,
        clock: inout HybridLogicalClock, validator: Validator, report: inout ApplyReport, facts: inout FactKeeper,
        router: inout HomeRouter?
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
        func setAside(_ change: Change, seq: UInt64, code: String, reason: String) throws {
            try Self.quarantine(change, db: db, originNo: originNo, seq: seq, code: code, reason: reason, at: validator.now)
            report.quarantinedChanges += 1
        }
        for (i, change) in changes.enumerated() {
            let seq = batch.firstSeq + UInt64(i)
            do {
                // Who may write first: a site's roster entry is refused for good, whatever its stamp
                // (set aside as clock_ahead it would be retried, and merged, once the clock caught up).
                try validator.checkWriter(of: change.record, writer: batch.origin.node, rosterAuthority: node)
                do { try clock.check(remote: change.hlc, now: physical) } catch {
                    throw RecordValidationError.clockAhead(error.description)
                }
                try validator.validate(change.record)
                let outcome: MergeWriter.Outcome
                if case .attempt = change.record, set != nil {
                    // Its outcome is learnt at the flush; its stamp is observed now, in arrival
                    // order like every other change's (a conflict found later leaves it observed).
                    let feedTo = try router?.destination(of: change, from: batch.origin.node)
                    _ = set!.add(change, node: batch.origin.node, originNo: originNo, seq: seq, feedTo: feedTo)
                    try? clock.observe(remote: change.hlc, now: physical)
                    continue
                } else if set?.add(change, node: batch.origin.node, originNo: originNo, seq: seq, feedTo: nil) == true {
                    outcome = .merged  // the other held kinds always merge: their joins cannot refuse
                } else {
                    outcome = try writer.merge(change, from: batch.origin.node)
                }
                switch outcome {
                case .attemptConflict:
                    facts.touch(change.record.learnerID)  // its best score may have been set aside
                    throw RecordValidationError.attemptConflict(change.record.attemptIDForLog)
                case .homeContested:
                    report.contestedHomeClaims.append(batch.origin)
                    facts.touch(change.record)
                case .merged:
                    facts.touch(change.record)
                case .mergedFactInputsUnchanged:
                    break
                }
                try? clock.observe(remote: change.hlc, now: physical)
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
            db.cachedStatement(
                sql: "SELECT origin_no, quarantine_reason, contiguous_seq, last_batch_id FROM origin WHERE node_id = ? AND epoch = ?"),
            arguments: [origin.node.bytes, epoch])
        {
            return OriginState(
                no: row["origin_no"], quarantine: row["quarantine_reason"],
                contiguous: UInt64(max(0, row["contiguous_seq"] as Int64)), lastBatchID: row["last_batch_id"] ?? Batch.zeroID)
        }
        try db.execute(sql: "INSERT INTO origin (node_id, epoch) VALUES (?, ?)", arguments: [origin.node.bytes, epoch])
        return OriginState(no: db.lastInsertedRowID, quarantine: nil, contiguous: 0, lastBatchID: Batch.zeroID)
    }

    /// The stored batch of an origin that a new batch ending at `lastSeq` could overlap.
    private static func nearestBatch(_ db: Database, originNo: Int64, below lastSeq: UInt64) throws -> BatchAdmission.Stored? {
        guard let row = try Row.fetchOne(
            db.cachedStatement(
                sql: """
                    SELECT first_seq, last_seq, batch_id FROM batch
                    WHERE origin_no = ? AND first_seq <= ? ORDER BY first_seq DESC LIMIT 1
                    """), arguments: [originNo, Int64(lastSeq)])
        else { return nil }
        return .init(
            firstSeq: UInt64(max(0, row["first_seq"] as Int64)), lastSeq: UInt64(max(0, row["last_seq"] as Int64)), id: row["batch_id"])
    }

    private static func quarantineOrigin(_ db: Database, _ originNo: Int64, _ why: String) throws {
        try db.execute(
            sql: "UPDATE origin SET quarantine_reason = ? WHERE origin_no = ? AND quarantine_reason IS NULL",
            arguments: [why, originNo])
    }

}

extension RecordChange {
    /// The attempt id, for integrity reports (never personal data).
    var attemptIDForLog: String {
        if case .attempt(let a) = self { return a.attemptID }
        return "-"
    }
}
