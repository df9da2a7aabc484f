/// A learner: identity (derived from the national ID) plus per-field last-writer-wins profile.
public struct LearnerRecord: Hashable, Sendable {
    public let learnerID: String
    /// The 12-digit national personal identification number: personal data, never logged.
    public let nationalID: String
    public var fullName: LWWRegister<String>?
    public var role: LWWRegister<Role>?
    public var unit: LWWRegister<String>?
    public var homeCommune: LWWRegister<Int>?

    public init(
        learnerID: String, nationalID: String, fullName: LWWRegister<String>? = nil,
        role: LWWRegister<Role>? = nil, unit: LWWRegister<String>? = nil, homeCommune: LWWRegister<Int>? = nil
    ) {
        self.learnerID = learnerID
        self.nationalID = nationalID
        self.fullName = fullName
        self.role = role
        self.unit = unit
        self.homeCommune = homeCommune
    }

    /// The join, field by field. Identity fields are equal by construction (the id is a hash of
    /// the national ID, checked on the way in).
    public func merged(with other: Self) -> Self {
        var out = self
        out.fullName = fullName.join(other.fullName) { $0.merged(with: $1) }
        out.role = role.join(other.role) { $0.merged(with: $1) }
        out.unit = unit.join(other.unit) { $0.merged(with: $1) }
        // The home commune decides where a learner's records (personal data) flow: first claim
        // wins, so an enrolled site cannot move someone else's learner to itself by writing later.
        out.homeCommune = homeCommune.join(other.homeCommune) { $0.mergedFirstWins(with: $1) }
        return out
    }
}

/// Enrollment of a learner in a course as a causal-length counter: odd = enrolled.
public struct EnrollmentRecord: Hashable, Sendable {
    public let learnerID: String
    public let courseID: String
    public var length: UInt64

    public init(learnerID: String, courseID: String, length: UInt64) {
        self.learnerID = learnerID
        self.courseID = courseID
        self.length = length
    }

    public var isEnrolled: Bool { length % 2 == 1 }

    public func merged(with other: Self) -> Self {
        var out = self
        out.length = max(length, other.length)
        return out
    }

    /// The next length after a local enroll (no-op when already enrolled).
    public static func lengthAfterEnroll(_ current: UInt64) -> UInt64 { current % 2 == 1 ? current : current + 1 }
    /// The next length after a local withdraw (no-op when not enrolled).
    public static func lengthAfterWithdraw(_ current: UInt64) -> UInt64 { current % 2 == 1 ? current + 1 : current }
}

/// Progress of a learner in a lesson: the highest percent seen, the earliest completion time.
public struct ProgressRecord: Hashable, Sendable {
    public let learnerID: String
    public let lessonID: String
    public var percent: Int
    /// Milliseconds since the Unix epoch.
    public var completedAt: Int64?

    public init(learnerID: String, lessonID: String, percent: Int, completedAt: Int64?) {
        self.learnerID = learnerID
        self.lessonID = lessonID
        self.percent = percent
        self.completedAt = completedAt
    }

    public func merged(with other: Self) -> Self {
        var out = self
        out.percent = max(percent, other.percent)
        out.completedAt = earliest(completedAt, other.completedAt)
        return out
    }
}

/// One quiz attempt: immutable once written.
public struct AttemptRecord: Hashable, Sendable {
    public let attemptID: String
    public let learnerID: String
    public let quizID: String
    /// The chosen option index per question, in question order; -1 = unanswered.
    public let answers: [Int]
    public let score: Int
    public let maxScore: Int
    public let startedAt: Int64
    public let finishedAt: Int64

    public init(
        attemptID: String, learnerID: String, quizID: String, answers: [Int], score: Int, maxScore: Int,
        startedAt: Int64, finishedAt: Int64
    ) {
        self.attemptID = attemptID
        self.learnerID = learnerID
        self.quizID = quizID
        self.answers = answers
        self.score = score
        self.maxScore = maxScore
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }
}

/// The lattice an attempt id lives in: absent < one value < conflict. Two different attempts
/// under one id are an integrity violation, and the join is `conflict` whatever the order, so
/// every replica sets both aside alike.
public enum AttemptState: Hashable, Sendable {
    case value(AttemptRecord)
    case conflict

    public func merged(with other: Self) -> Self {
        switch (self, other) {
        case (.value(let a), .value(let b)) where a == b: .value(a)
        default: .conflict
        }
    }
}

/// A certificate: issued once per (learner, course), grow-only; revocation never clears.
public struct CertificateRecord: Hashable, Sendable {
    public let certificateID: String
    public let learnerID: String
    public let courseID: String
    public var issuedAt: Int64
    public var revokedAt: Int64?

    public init(certificateID: String, learnerID: String, courseID: String, issuedAt: Int64, revokedAt: Int64? = nil) {
        self.certificateID = certificateID
        self.learnerID = learnerID
        self.courseID = courseID
        self.issuedAt = issuedAt
        self.revokedAt = revokedAt
    }

    public var isRevoked: Bool { revokedAt != nil }

    public func merged(with other: Self) -> Self {
        var out = self
        out.issuedAt = min(issuedAt, other.issuedAt)
        out.revokedAt = earliest(revokedAt, other.revokedAt)
        return out
    }
}

/// One official on a commune's roster: who must be trained there (docs/crdt-rules.md, "Rosters").
/// The whole entry is one value: a move to another commune or a removal replaces it at once.
public struct RosterEntry: Hashable, Comparable, Sendable {
    public var fullName: String
    public var role: Role
    public var unit: String
    public var commune: Int
    /// False once the hub removed the official from the roster (a tombstone: it must win over the
    /// entry it removes on every replica, so it is a value of the register, not a deletion).
    public var active: Bool

    public init(fullName: String, role: Role, unit: String, commune: Int, active: Bool = true) {
        self.fullName = fullName
        self.role = role
        self.unit = unit
        self.commune = commune
        self.active = active
    }

    /// Only breaks the tie of one writer writing two entries at one stamp (see ``LWWRegister``).
    public static func < (a: Self, b: Self) -> Bool {
        (a.commune, a.role, a.fullName, a.unit, a.active ? 1 : 0) < (b.commune, b.role, b.fullName, b.unit, b.active ? 1 : 0)
    }
}

/// A roster member's replicated state: identity (as for learners) plus a last-writer-wins entry.
public struct RosterRecord: Hashable, Sendable {
    public let learnerID: String
    /// Personal data, never logged.
    public let nationalID: String
    public var entry: LWWRegister<RosterEntry>

    public init(learnerID: String, nationalID: String, entry: LWWRegister<RosterEntry>) {
        self.learnerID = learnerID
        self.nationalID = nationalID
        self.entry = entry
    }

    public func merged(with other: Self) -> Self {
        var out = self
        out.entry = entry.merged(with: other.entry)
        return out
    }
}
