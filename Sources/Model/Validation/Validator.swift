package import Merge

/// Checks one record against the rules that must always hold. Shared by local writes (which
/// throw) and remote changes (which are quarantined), so both sides refuse the same things.
package struct Validator {
    /// How far in the future a date may be: the HLC drift bound.
    package static let maxFutureMilliseconds: Int64 = Int64(HybridLogicalClock.defaultMaxDrift)

    package let curriculum: CurriculumIndex
    package let now: Int64

    package init(curriculum: CurriculumIndex, now: Int64) {
        self.curriculum = curriculum
        self.now = now
    }

    package func validate(_ record: RecordChange) throws(RecordValidationError) {
        switch record {
        case .learner(let c):
            guard Identity.isWellFormedNationalID(c.nationalID) else { throw .malformedNationalID }
            guard Identity.learnerID(nationalID: c.nationalID) == c.learnerID else { throw .learnerIDMismatch }
            if let n = c.fullName { try text(n, field: "full name") }
            if let u = c.unit { try text(u, field: "unit") }
            if let h = c.homeCommune, !curriculum.communes.contains(h) { throw .unknownCommune(h) }
        case .enrollment(let r):
            // A causal length is a count of enroll/withdraw steps: 1…2^53−1 (stored as SQLite INTEGER).
            guard r.length >= 1, r.length <= ProtocolLimits.maxSequence else { throw .invalidEnrollmentLength }
            guard curriculum.courses.contains(r.courseID) else { throw .unknownCourse(r.courseID) }
        case .progress(let r):
            guard (0...100).contains(r.percent) else { throw .percentOutOfRange(r.percent) }
            guard curriculum.lessons.contains(r.lessonID) else { throw .unknownLesson(r.lessonID) }
            if let t = r.completedAt {
                guard r.percent == 100 else { throw .completedBelowFullProgress }
                try notFuture(t, field: "completion time")
            }
        case .attempt(let r):
            guard RecordID.isUUIDv7(r.attemptID) else { throw .invalidAttemptID(r.attemptID) }
            guard let quiz = curriculum.quizzes[r.quizID] else { throw .unknownQuiz(r.quizID) }
            guard r.maxScore == quiz.maxScore else { throw .maxScoreMismatch(claimed: r.maxScore, quiz: quiz.maxScore) }
            guard (0...r.maxScore).contains(r.score) else { throw .scoreOutOfRange(score: r.score, maxScore: r.maxScore) }
            guard r.answers.count == quiz.questions else {
                throw .answerCountMismatch(answers: r.answers.count, questions: quiz.questions)
            }
            // What the change codec accepts (−1 = unanswered): never write what no peer can read.
            guard r.answers.allSatisfy({ (-1...Int(Int32.max)).contains($0) }) else { throw .answerOutOfRange }
            guard r.finishedAt >= r.startedAt else { throw .finishedBeforeStarted }
            try notBeforeProgramme(r.startedAt, field: "attempt start time")
            try notFuture(r.finishedAt, field: "attempt finish time")
        case .certificate(let r):
            guard curriculum.courses.contains(r.courseID) else { throw .unknownCourse(r.courseID) }
            guard Identity.certificateID(learnerID: r.learnerID, courseID: r.courseID) == r.certificateID else {
                throw .certificateIDMismatch
            }
            try notFuture(r.issuedAt, field: "issue time")
            if let t = r.revokedAt { try notFuture(t, field: "revocation time") }
        case .roster(let r):
            guard Identity.isWellFormedNationalID(r.nationalID) else { throw .malformedNationalID }
            guard Identity.learnerID(nationalID: r.nationalID) == r.learnerID else { throw .learnerIDMismatch }
            try text(r.entry.fullName, field: "full name")
            try text(r.entry.unit, field: "unit")
            guard curriculum.communes.contains(r.entry.commune) else { throw .unknownCommune(r.entry.commune) }
        }
    }

    /// Who may write what, the same on every replica: a roster entry only by the hub's identity
    /// (`rosterAuthority`; nil where this node knows no hub key, so no roster entry is accepted).
    /// Every other record may be written by any enrolled node.
    package func checkWriter(of record: RecordChange, writer: NodeID, rosterAuthority: NodeID?) throws(RecordValidationError) {
        if case .roster = record, writer != rosterAuthority { throw .rosterNotFromHub }
    }

    /// Every date a record carries lies between the programme's start and a little past now.
    private func notFuture(_ t: Int64, field: String) throws(RecordValidationError) {
        try notBeforeProgramme(t, field: field)
        if t > now + Self.maxFutureMilliseconds {
            throw .dateInFuture(field: field, aheadSeconds: (t - now) / 1000)
        }
    }

    private func notBeforeProgramme(_ t: Int64, field: String) throws(RecordValidationError) {
        if t < ProtocolLimits.programmeStartMilliseconds { throw .dateBeforeProgramme(field: field) }
    }

    private func text(_ s: String, field: String) throws(RecordValidationError) {
        let count = s.count
        guard (1...200).contains(count), s.utf8.count <= ChangeCodec.maxTextLength,
              !s.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }),
              s.trimmingPrefixWhitespace() == s
        else { throw .invalidText(field: field) }
    }
}

extension String {
    fileprivate func trimmingPrefixWhitespace() -> String {
        String(drop(while: { $0.isWhitespace }))
    }
}
