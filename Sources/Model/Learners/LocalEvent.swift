public import Merge

/// A fact recorded at this node by a learning app or an operator.
public enum LocalEvent: Sendable, Equatable {
    case registerLearner(nationalID: String, fullName: String, role: Role, unit: String, homeCommune: Int)
    case updateLearner(learnerID: String, fullName: String? = nil, role: Role? = nil, unit: String? = nil,
                       homeCommune: Int? = nil)
    case enroll(learnerID: String, courseID: String)
    case withdraw(learnerID: String, courseID: String)
    /// Progress in a lesson at time `at`; reaching 100 records the completion time.
    case progress(learnerID: String, lessonID: String, percent: Int, at: Int64)
    case attempt(learnerID: String, quizID: String, answers: [Int], score: Int, maxScore: Int,
                 startedAt: Int64, finishedAt: Int64)
    /// A quiz attempt under an id the caller chose (a lower-case UUIDv7). The import derives it
    /// from the line (``EventImport/attemptID(learnerID:quizID:answers:score:maxScore:startedAt:finishedAt:)``),
    /// so the same line always records the same attempt; already held with the same content, it
    /// changes nothing and nothing is replicated.
    case attemptWithID(attemptID: String, learnerID: String, quizID: String, answers: [Int], score: Int,
                       maxScore: Int, startedAt: Int64, finishedAt: Int64)
    /// Issues the course certificate; refused unless the learner is eligible (derived facts).
    case issueCertificate(learnerID: String, courseID: String)
    case revokeCertificate(certificateID: String)
}

/// What recording an event produced: the id callers need to refer to it later.
public enum LocalOutcome: Sendable, Equatable {
    case learner(id: String)
    case attempt(id: String)
    case certificate(id: String)
    case recorded
}
