/// The replicated state of one node as plain values: the reference model of the merge rules.
///
/// The store implements the same joins in SQL for speed; tests fold the same changes through
/// this type and require the store's digest to equal ``canonicalBytes()``'s.
public struct ReplicaState: Hashable, Sendable {
    public struct PairKey: Hashable, Sendable {
        public let a: String
        public let b: String
        public init(_ a: String, _ b: String) { self.a = a; self.b = b }
    }

    public var learners: [String: LearnerRecord] = [:]
    public var enrollments: [PairKey: EnrollmentRecord] = [:]
    public var progress: [PairKey: ProgressRecord] = [:]
    public var attempts: [String: AttemptState] = [:]
    public var certificates: [String: CertificateRecord] = [:]
    public var rosters: [String: RosterRecord] = [:]

    public init() {}

    /// Joins one change from `origin` into the state.
    public mutating func apply(_ change: Change, from node: NodeID) {
        switch change.record {
        case .learner(let c):
            let r = c.record(stamp: change.hlc, node: node)
            learners[c.learnerID] = learners[c.learnerID].join(r) { $0.merged(with: $1) }
        case .enrollment(let r):
            let k = PairKey(r.learnerID, r.courseID)
            enrollments[k] = enrollments[k].join(r) { $0.merged(with: $1) }
        case .progress(let r):
            let k = PairKey(r.learnerID, r.lessonID)
            progress[k] = progress[k].join(r) { $0.merged(with: $1) }
        case .attempt(let r):
            attempts[r.attemptID] = attempts[r.attemptID].join(.value(r)) { $0.merged(with: $1) }
        case .certificate(let r):
            certificates[r.certificateID] = certificates[r.certificateID].join(r) { $0.merged(with: $1) }
        case .roster(let c):
            let r = c.record(stamp: change.hlc, node: node)
            rosters[c.learnerID] = rosters[c.learnerID].join(r) { $0.merged(with: $1) }
        }
    }

    /// The join of two whole states.
    public func merged(with other: Self) -> Self {
        var out = self
        out.learners.merge(other.learners) { $0.merged(with: $1) }
        out.enrollments.merge(other.enrollments) { $0.merged(with: $1) }
        out.progress.merge(other.progress) { $0.merged(with: $1) }
        out.attempts.merge(other.attempts) { $0.merged(with: $1) }
        out.certificates.merge(other.certificates) { $0.merged(with: $1) }
        out.rosters.merge(other.rosters) { $0.merged(with: $1) }
        return out
    }

    /// Canonical bytes: every record in key order (bytewise UTF-8, as SQLite's BINARY collation).
    public func canonicalBytes() -> [UInt8] {
        var w = CanonicalWriter()
        for k in learners.keys.sorted(by: utf8Less) { w.learner(learners[k]!) }
        for k in enrollments.keys.sorted(by: pairLess) { w.enrollment(enrollments[k]!) }
        for k in progress.keys.sorted(by: pairLess) { w.progress(progress[k]!) }
        for k in attempts.keys.sorted(by: utf8Less) {
            switch attempts[k]! {
            case .value(let a): w.attempt(a)
            case .conflict: w.attemptConflict(k)
            }
        }
        for k in certificates.keys.sorted(by: utf8Less) { w.certificate(certificates[k]!) }
        for k in rosters.keys.sorted(by: utf8Less) { w.roster(rosters[k]!) }
        return w.bytes
    }
}

func utf8Less(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }
func pairLess(_ x: ReplicaState.PairKey, _ y: ReplicaState.PairKey) -> Bool {
    x.a == y.a ? utf8Less(x.b, y.b) : utf8Less(x.a, y.a)
}

/// Writes records in the canonical form the state digest hashes. Sections are tagged so that
/// records of different kinds can never encode to the same bytes.
public struct CanonicalWriter {
    private var w = ByteWriter(capacity: 4096)
    public init() {}
    public var bytes: [UInt8] { w.bytes }

    private mutating func register<V>(_ r: LWWRegister<V>?, _ put: (inout ByteWriter, V) -> Void) {
        guard let r else { w.u8(0); return }
        w.u8(1)
        put(&w, r.value)
        w.fixed64(r.stamp.rawValue)
        w.raw(r.node.bytes)
    }

    public mutating func learner(_ r: LearnerRecord) {
        w.u8(RecordKind.learner.rawValue)
        w.string(r.learnerID)
        w.string(r.nationalID)
        register(r.fullName) { $0.string($1) }
        register(r.role) { $0.string($1.rawValue) }
        register(r.unit) { $0.string($1) }
        register(r.homeCommune) { $0.zigzag(Int64($1)) }
    }

    public mutating func enrollment(_ r: EnrollmentRecord) {
        w.u8(RecordKind.enrollment.rawValue)
        w.string(r.learnerID)
        w.string(r.courseID)
        w.varint(r.length)
    }

    public mutating func progress(_ r: ProgressRecord) {
        w.u8(RecordKind.progress.rawValue)
        w.string(r.learnerID)
        w.string(r.lessonID)
        w.zigzag(Int64(r.percent))
        w.zigzag(r.completedAt ?? -1)
    }

    public mutating func attempt(_ r: AttemptRecord) {
        var inner = ByteWriter()
        ChangeCodec.encode(Change(hlc: .zero, record: .attempt(r)), into: &inner)
        w.raw(inner.bytes)
    }

    public mutating func attemptConflict(_ id: String) {
        w.u8(0x80 | RecordKind.attempt.rawValue)
        w.string(id)
    }

    public mutating func certificate(_ r: CertificateRecord) {
        w.u8(RecordKind.certificate.rawValue)
        w.string(r.certificateID)
        w.string(r.learnerID)
        w.string(r.courseID)
        w.zigzag(r.issuedAt)
        w.zigzag(r.revokedAt ?? -1)
    }

    public mutating func roster(_ r: RosterRecord) {
        w.u8(RecordKind.roster.rawValue)
        w.string(r.learnerID)
        w.string(r.nationalID)
        register(r.entry) { w, e in
            w.string(e.fullName)
            w.string(e.role.rawValue)
            w.string(e.unit)
            w.zigzag(Int64(e.commune))
            w.u8(e.active ? 1 : 0)
        }
    }
}
