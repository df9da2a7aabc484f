/// Why a record was refused (a local write) or set aside (a remote change). Each case names
/// what is wrong; ``code`` is the stable key stored in the quarantine table.
///
/// Named for the record it judges, not `ValidationError`: that is swift-argument-parser's usage
/// error, and the CLI imports both modules.
public enum RecordValidationError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformedNationalID
    case learnerIDMismatch
    case unknownLearner(String)
    case unknownCommune(Int)
    case invalidText(field: String)
    case unknownCourse(String)
    case unknownLesson(String)
    case unknownQuiz(String)
    case percentOutOfRange(Int)
    case completedBelowFullProgress
    case scoreOutOfRange(score: Int, maxScore: Int)
    case maxScoreMismatch(claimed: Int, quiz: Int)
    case answerCountMismatch(answers: Int, questions: Int)
    case invalidAttemptID(String)
    case finishedBeforeStarted
    case dateInFuture(field: String, aheadSeconds: Int64)
    /// Before 2025-01-01T00:00:00Z (``ProtocolLimits/programmeStartMilliseconds``): no result of
    /// the programme can be that old; a 1970 date is a broken clock or a forgery.
    case dateBeforeProgramme(field: String)
    case clockAhead(String)
    case invalidEnrollmentLength
    case certificateIDMismatch
    case notEligible(courseID: String, reason: String)
    case unknownCertificate(String)
    case attemptConflict(String)
    /// A learner's home commune is set once, by the first registration (docs/crdt-rules.md).
    case homeCommuneFixed(current: Int)
    case answerOutOfRange
    /// A roster entry written by anyone but the hub (docs/crdt-rules.md, "Rosters").
    case rosterNotFromHub

    /// A stable machine-readable key.
    public var code: String {
        switch self {
        case .malformedNationalID: "malformed_national_id"
        case .learnerIDMismatch: "learner_id_mismatch"
        case .unknownLearner: "unknown_learner"
        case .unknownCommune: "unknown_commune"
        case .invalidText: "invalid_text"
        case .unknownCourse: "unknown_course"
        case .unknownLesson: "unknown_lesson"
        case .unknownQuiz: "unknown_quiz"
        case .percentOutOfRange: "percent_out_of_range"
        case .completedBelowFullProgress: "completed_below_100"
        case .scoreOutOfRange: "score_out_of_range"
        case .maxScoreMismatch: "max_score_mismatch"
        case .answerCountMismatch: "answer_count_mismatch"
        case .invalidAttemptID: "invalid_attempt_id"
        case .finishedBeforeStarted: "finished_before_started"
        case .dateInFuture: "date_in_future"
        case .dateBeforeProgramme: "date_before_programme"
        case .clockAhead: "clock_ahead"
        case .invalidEnrollmentLength: "invalid_enrollment_length"
        case .certificateIDMismatch: "certificate_id_mismatch"
        case .notEligible: "not_eligible"
        case .unknownCertificate: "unknown_certificate"
        case .attemptConflict: "attempt_conflict"
        case .homeCommuneFixed: "home_commune_fixed"
        case .answerOutOfRange: "answer_out_of_range"
        case .rosterNotFromHub: "roster_not_from_hub"
        }
    }

    /// Whether a later curriculum release or clock correction may make the record valid, so a
    /// quarantined change is worth retrying.
    public var mayResolveLater: Bool {
        switch self {
        case .unknownCourse, .unknownLesson, .unknownQuiz, .maxScoreMismatch, .answerCountMismatch,
             .dateInFuture, .clockAhead: true
        default: false
        }
    }

    // Messages never include a national ID or a name: they reach logs.
    public var description: String {
        switch self {
        case .malformedNationalID: "national ID must be exactly 12 digits"
        case .learnerIDMismatch: "learner id is not the one derived from the national ID"
        case .unknownLearner(let id): "no learner with id \(id); register the learner first"
        case .unknownCommune(let c): "commune code \(c) is not one of the 3,321 official communes"
        case .invalidText(let f): "\(f) must be 1–200 characters with no control characters"
        case .unknownCourse(let id): "course \"\(id)\" is not in the installed curriculum"
        case .unknownLesson(let id): "lesson \"\(id)\" is not in the installed curriculum"
        case .unknownQuiz(let id): "quiz \"\(id)\" is not in the installed curriculum"
        case .percentOutOfRange(let p): "progress must be 0–100 percent, got \(p)"
        case .completedBelowFullProgress: "a completion time needs progress 100"
        case .scoreOutOfRange(let s, let m): "score \(s) is outside 0…\(m)"
        case .maxScoreMismatch(let c, let q): "max score \(c) differs from the quiz's \(q)"
        case .answerCountMismatch(let a, let q): "\(a) answers for a quiz of \(q) questions"
        case .invalidAttemptID(let id): "attempt id \"\(id)\" is not a lower-case UUIDv7"
        case .finishedBeforeStarted: "attempt finished before it started"
        case .dateInFuture(let f, let s): "\(f) is \(s) s in the future (limit 300 s); check this machine's clock"
        case .dateBeforeProgramme(let f): "\(f) is before 2025-01-01, when the programme began; check the date or this machine's clock"
        case .clockAhead(let why): why
        case .invalidEnrollmentLength: "enrollment causal length must be 1…2^53−1"
        case .certificateIDMismatch: "certificate id is not the one derived from learner and course"
        case .notEligible(let c, let why): "learner is not eligible for a certificate in \(c): \(why)"
        case .unknownCertificate(let id): "no certificate with id \(id)"
        case .attemptConflict(let id): "attempt \(id) arrived with different contents: integrity violation"
        case .answerOutOfRange: "an answer must be an option index from 0, or −1 for unanswered"
        case .rosterNotFromHub: "a roster entry may only be written by the hub; this one came from another node"
        case .homeCommuneFixed(let c): "this learner's home commune is already \(c); it is set once, at registration, and another commune cannot claim the learner"
        }
    }
}
