/// A profile edit: the fields it sets take the change's HLC stamp and origin node.
public struct LearnerChange: Hashable, Sendable {
    public let learnerID: String
    public let nationalID: String
    public var fullName: String?
    public var role: Role?
    public var unit: String?
    public var homeCommune: Int?

    public init(
        learnerID: String, nationalID: String, fullName: String? = nil, role: Role? = nil, unit: String? = nil,
        homeCommune: Int? = nil
    ) {
        self.learnerID = learnerID
        self.nationalID = nationalID
        self.fullName = fullName
        self.role = role
        self.unit = unit
        self.homeCommune = homeCommune
    }

    /// The record state this change contributes.
    public func record(stamp: HLCTimestamp, node: NodeID) -> LearnerRecord {
        LearnerRecord(
            learnerID: learnerID, nationalID: nationalID,
            fullName: fullName.map { LWWRegister(value: $0, stamp: stamp, node: node) },
            role: role.map { LWWRegister(value: $0, stamp: stamp, node: node) },
            unit: unit.map { LWWRegister(value: $0, stamp: stamp, node: node) },
            homeCommune: homeCommune.map { LWWRegister(value: $0, stamp: stamp, node: node) })
    }
}

/// The replicated record a change carries. Sites originate only these learner-side records;
/// curriculum arrives in admin-signed releases.
public enum RecordChange: Hashable, Sendable {
    case learner(LearnerChange)
    case enrollment(EnrollmentRecord)
    case progress(ProgressRecord)
    case attempt(AttemptRecord)
    case certificate(CertificateRecord)
    /// A roster entry, written by the hub only (docs/crdt-rules.md, "Rosters").
    case roster(RosterChange)

    /// The learner the record belongs to: decides which site it is routed home to.
    public var learnerID: String {
        switch self {
        case .learner(let c): c.learnerID
        case .enrollment(let r): r.learnerID
        case .progress(let r): r.learnerID
        case .attempt(let r): r.learnerID
        case .certificate(let r): r.learnerID
        case .roster(let r): r.learnerID
        }
    }

    public var kind: RecordKind {
        switch self {
        case .learner: .learner
        case .enrollment: .enrollment
        case .progress: .progress
        case .attempt: .attempt
        case .certificate: .certificate
        case .roster: .roster
        }
    }
}

/// Record kinds, with their stable wire tags.
public enum RecordKind: UInt8, CaseIterable, Sendable {
    case learner = 1
    case enrollment = 2
    case progress = 3
    case attempt = 4
    case certificate = 5
    /// Protocol minor 3 (docs/protocol.md): only in the home feed, from the hub.
    case roster = 6
}

/// A roster change as it travels: identity and the new entry; its stamp is the change's.
public struct RosterChange: Hashable, Sendable {
    public let learnerID: String
    public let nationalID: String
    public let entry: RosterEntry

    public init(learnerID: String, nationalID: String, entry: RosterEntry) {
        self.learnerID = learnerID
        self.nationalID = nationalID
        self.entry = entry
    }

    public func record(stamp: HLCTimestamp, node: NodeID) -> RosterRecord {
        RosterRecord(learnerID: learnerID, nationalID: nationalID, entry: LWWRegister(value: entry, stamp: stamp, node: node))
    }
}

/// One change in an origin's log: its stamp and its record. Its sequence number is implied by
/// its place in the batch.
public struct Change: Hashable, Sendable {
    public let hlc: HLCTimestamp
    public let record: RecordChange

    public init(hlc: HLCTimestamp, record: RecordChange) {
        self.hlc = hlc
        self.record = record
    }
}
