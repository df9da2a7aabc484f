public import Foundation
import GRDB
import Merge
import Sodium

extension NodeStore {
    /// A canonical digest of the replicated state: the same records give the same 32 bytes on
    /// every node, whatever order their changes arrived in. It hashes the bytes of
    /// ``ReplicaState/canonicalBytes()`` for the same state, streamed table by table.
    public func stateDigest() throws -> Data {
        try pool.read { db in
            let hash = Blake2b()
            func feed(_ sql: String, _ write: (inout CanonicalWriter, Row) -> Void) throws {
                let cursor = try Row.fetchCursor(db, sql: sql)
                while let row = try cursor.next() {
                    var w = CanonicalWriter()
                    write(&w, row)
                    hash.update(w.bytes)
                }
            }
            try feed("SELECT * FROM learner ORDER BY learner_id") { $0.learner(LearnerRow.decode($1)) }
            try feed("SELECT * FROM enrollment ORDER BY learner_id, course_id") {
                $0.enrollment(EnrollmentRecord(
                    learnerID: $1["learner_id"], courseID: $1["course_id"], length: UInt64($1["length"] as Int64)))
            }
            try feed("SELECT * FROM progress ORDER BY learner_id, lesson_id") {
                $0.progress(ProgressRecord(
                    learnerID: $1["learner_id"], lessonID: $1["lesson_id"], percent: $1["percent"],
                    completedAt: $1["completed_at"]))
            }
            try feed(
                """
                SELECT attempt_id AS k, 0 AS conflicted, attempt_id, learner_id, quiz_id, answers, score, max_score,
                  started_at, finished_at FROM attempt
                UNION ALL SELECT attempt_id, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM attempt_conflict
                ORDER BY 1
                """
            ) { w, row in
                if row["conflicted"] as Int == 1 {
                    w.attemptConflict(row["k"])
                } else {
                    w.attempt(AttemptRow.decode(row))
                }
            }
            try feed("SELECT * FROM certificate ORDER BY certificate_id") {
                $0.certificate(CertificateRecord(
                    certificateID: $1["certificate_id"], learnerID: $1["learner_id"], courseID: $1["course_id"],
                    issuedAt: $1["issued_at"], revokedAt: $1["revoked_at"]))
            }
            try feed("SELECT * FROM roster ORDER BY learner_id") { $0.roster(RosterRow.decode($1)) }
            return hash.finalize()
        }
    }
}
