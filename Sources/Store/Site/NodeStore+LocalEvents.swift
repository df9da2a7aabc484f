import Merge
import Foundation
import GRDB
public import Model

extension NodeStore {
    /// Records local events in one transaction: all of them, with their change-log entries, or
    /// none (the first invalid event throws and nothing is written).
    ///
    /// - Throws: ``RecordValidationError`` naming what is wrong with the first bad event.
    @discardableResult
    public func record(_ events: [LocalEvent]) throws -> [LocalOutcome] {
        let node = self.node
        let validator = Validator(curriculum: validatorIndex, now: now())
        return try pool.write { db in try Self.record(events, in: db, node: node, validator: validator) }
    }

    /// ``record(_:)`` inside a transaction the caller holds (the import adds its journal rows to
    /// the same transaction and tries each line in a savepoint).
    static func record(_ events: [LocalEvent], in db: Database, node: NodeID, validator: Validator) throws
        -> [LocalOutcome]
    {
        let physical = UInt64(max(0, validator.now))
        var ctx = try LocalWriteContext(db)
        var writer = try MergeWriter(db)
        let pending = try db.makeStatement(sql: "INSERT INTO pending_change (seq, body) VALUES (?, ?)")
        var outcomes = [LocalOutcome]()
        var facts = FactKeeper(curriculum: validator.curriculum)
        for event in events {
            let stamp: HLCTimestamp
            do { stamp = try ctx.clock.tick(now: physical) } catch let e as ClockError { throw StoreError.clock(e.description) }
            let (produced, outcome) = try Self.change(for: event, stamp: stamp, db: db, validator: validator)
            outcomes.append(outcome)
            guard let record = produced else { continue }  // already so: nothing to replicate
            try validator.validate(record)
            let change = Change(hlc: stamp, record: record)
            _ = try writer.merge(change, from: node)
            facts.touch(record.learnerID)
            var w = ByteWriter()
            ChangeCodec.encode(change, into: &w)
            pending.setUncheckedArguments([ctx.nextSeq, Data(w.bytes)])
            try pending.execute()
            ctx.nextSeq += 1
        }
        facts.touch(writer.setAsideLearners)
        try facts.flush(db)
        try ctx.persist(db)
        return outcomes
    }

    /// Turns an event into the replicated record it produces, reading current state where
    /// the event depends on it (the enrollment counter, eligibility).
    private static func change(
        for event: LocalEvent, stamp: HLCTimestamp, db: Database, validator: Validator
    ) throws -> (RecordChange?, LocalOutcome) {
        let now = validator.now
        func learner(_ id: String) throws -> LearnerRecord {
            guard let l = try LearnerRow.fetch(db, id: id) else { throw RecordValidationError.unknownLearner(id) }
            return l
        }
        switch event {
        case .registerLearner(let nationalID, let fullName, let role, let unit, let home):
            guard Identity.isWellFormedNationalID(nationalID) else { throw RecordValidationError.malformedNationalID }
            let id = Identity.learnerID(nationalID: nationalID)
            if let current = try LearnerRow.fetch(db, id: id)?.homeCommune?.value, current != home {
                throw RecordValidationError.homeCommuneFixed(current: current)
            }
            let c = LearnerChange(
                learnerID: id, nationalID: nationalID, fullName: fullName, role: role, unit: unit, homeCommune: home)
            return (.learner(c), .learner(id: id))
        case .updateLearner(let id, let fullName, let role, let unit, let home):
            let existing = try learner(id)
            if let home, let current = existing.homeCommune?.value, current != home {
                throw RecordValidationError.homeCommuneFixed(current: current)
            }
            let c = LearnerChange(
                learnerID: id, nationalID: existing.nationalID, fullName: fullName, role: role, unit: unit,
                homeCommune: home)
            return (.learner(c), .learner(id: id))
        case .enroll(let id, let course), .withdraw(let id, let course):
            _ = try learner(id)
            let current = try Int64.fetchOne(
                db, sql: "SELECT length FROM enrollment WHERE learner_id = ? AND course_id = ?",
                arguments: [id, course]) ?? 0
            let cur = UInt64(current)
            let next: UInt64
            if case .enroll = event {
                next = EnrollmentRecord.lengthAfterEnroll(cur)
            } else {
                next = EnrollmentRecord.lengthAfterWithdraw(cur)
            }
            // Enrolling the enrolled or withdrawing the withdrawn changes nothing.
            guard next != cur else { return (nil, .recorded) }
            return (.enrollment(EnrollmentRecord(learnerID: id, courseID: course, length: next)), .recorded)
        case .progress(let id, let lesson, let percent, let at):
            _ = try learner(id)
            let r = ProgressRecord(learnerID: id, lessonID: lesson, percent: percent, completedAt: percent == 100 ? at : nil)
            return (.progress(r), .recorded)
        case .attemptWithID(let attemptID, let id, let quiz, let answers, let score, let maxScore, let started, let finished):
            _ = try learner(id)
            let r = AttemptRecord(
                attemptID: attemptID, learnerID: id, quizID: quiz, answers: answers, score: score,
                maxScore: maxScore, startedAt: started, finishedAt: finished)
            // The same attempt again (a re-run import): already so, nothing to replicate.
            if try AttemptRow.fetch(db, id: attemptID) == r { return (nil, .attempt(id: attemptID)) }
            return (.attempt(r), .attempt(id: attemptID))
        case .attempt(let id, let quiz, let answers, let score, let maxScore, let started, let finished):
            _ = try learner(id)
            var system = SystemRandomNumberGenerator()
            let attemptID = RecordID.uuidV7(milliseconds: UInt64(max(0, now)), using: &system)
            let r = AttemptRecord(
                attemptID: attemptID, learnerID: id, quizID: quiz, answers: answers, score: score,
                maxScore: maxScore, startedAt: started, finishedAt: finished)
            return (.attempt(r), .attempt(id: attemptID))
        case .issueCertificate(let id, let course):
            _ = try learner(id)
            let status = try CourseStatus.fetch(db, learnerID: id, courseID: course)
            guard status.isEnrolled else { throw RecordValidationError.notEligible(courseID: course, reason: "not enrolled") }
            guard status.isComplete else {
                throw RecordValidationError.notEligible(courseID: course, reason: status.missingSummary)
            }
            let certID = Identity.certificateID(learnerID: id, courseID: course)
            let r = CertificateRecord(certificateID: certID, learnerID: id, courseID: course, issuedAt: now)
            return (.certificate(r), .certificate(id: certID))
        case .revokeCertificate(let certID):
            guard let row = try Row.fetchOne(
                db, sql: "SELECT learner_id, course_id, issued_at FROM certificate WHERE certificate_id = ?",
                arguments: [certID])
            else { throw RecordValidationError.unknownCertificate(certID) }
            let r = CertificateRecord(
                certificateID: certID, learnerID: row["learner_id"], courseID: row["course_id"],
                issuedAt: row["issued_at"], revokedAt: now)
            return (.certificate(r), .certificate(id: certID))
        }
    }
}
