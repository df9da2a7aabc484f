import Foundation
import Merge
import TestSupport
import Testing

/// Random values over deliberately small domains, so that ties and collisions happen often.
struct Gen {
    var rng: SeededGenerator
    let nodes: [NodeID]

    init(seed: UInt64) {
        rng = SeededGenerator(seed: seed)
        nodes = (0..<3).map { i in NodeID(bytes: Data(repeating: UInt8(i * 50), count: 32))! }
    }

    mutating func int(_ r: ClosedRange<Int>) -> Int { Int.random(in: r, using: &rng) }
    mutating func bool() -> Bool { Bool.random(using: &rng) }
    mutating func stamp() -> HLCTimestamp { HLCTimestamp(milliseconds: UInt64(int(1...4)), counter: UInt16(int(0...2))) }
    mutating func node() -> NodeID { nodes.pick(using: &rng)! }
    mutating func maybeTime() -> Int64? { bool() ? nil : Int64(int(1...5)) }

    mutating func register<V>(_ value: V) -> LWWRegister<V>? {
        int(0...3) == 0 ? nil : LWWRegister(value: value, stamp: stamp(), node: node())
    }

    mutating func learner() -> LearnerRecord {
        LearnerRecord(
            learnerID: "L", nationalID: "001234567890",
            fullName: register(["An", "Bình", "Chi"].pick(using: &rng)!),
            role: register(Role.allCases.pick(using: &rng)!),
            unit: register(["UBND", "HĐND"].pick(using: &rng)!),
            homeCommune: register([70, 73].pick(using: &rng)!))
    }

    mutating func enrollment() -> EnrollmentRecord {
        EnrollmentRecord(learnerID: "L", courseID: "C", length: UInt64(int(1...6)))
    }

    mutating func progress() -> ProgressRecord {
        let percent = int(0...100)
        return ProgressRecord(
            learnerID: "L", lessonID: "X", percent: percent, completedAt: percent == 100 ? Int64(int(1...5)) : nil)
    }

    mutating func attempt() -> AttemptState {
        let a = AttemptRecord(
            attemptID: "A", learnerID: "L", quizID: "Q", answers: [int(0...1)], score: int(0...1), maxScore: 2,
            startedAt: 1, finishedAt: 2)
        return int(0...5) == 0 ? .conflict : .value(a)
    }

    mutating func certificate() -> CertificateRecord {
        CertificateRecord(certificateID: "Z", learnerID: "L", courseID: "C", issuedAt: Int64(int(1...5)), revokedAt: maybeTime())
    }
}

/// Checks the three laws of a join-semilattice on `cases` random triples.
func checkSemilattice<T: Equatable>(
    _ name: String, cases: Int = 1_000, seed: UInt64, make: (inout Gen) -> T, join: (T, T) -> T,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    var gen = Gen(seed: seed)
    for i in 0..<cases {
        let a = make(&gen), b = make(&gen), c = make(&gen)
        #expect(join(a, b) == join(b, a), "\(name) not commutative, case \(i)", sourceLocation: sourceLocation)
        #expect(join(join(a, b), c) == join(a, join(b, c)), "\(name) not associative, case \(i)", sourceLocation: sourceLocation)
        #expect(join(a, a) == a, "\(name) not idempotent, case \(i)", sourceLocation: sourceLocation)
        #expect(join(join(a, b), b) == join(a, b), "\(name) does not absorb, case \(i)", sourceLocation: sourceLocation)
    }
}

@Suite("Merge rules are commutative, associative and idempotent (1,000 cases each)")
struct MergePropertyTests {
    @Test func learnerProfile() {
        checkSemilattice("learner", seed: 1, make: { $0.learner() }, join: { $0.merged(with: $1) })
    }
    @Test func enrollment() {
        checkSemilattice("enrollment", seed: 2, make: { $0.enrollment() }, join: { $0.merged(with: $1) })
    }
    @Test func progress() {
        checkSemilattice("progress", seed: 3, make: { $0.progress() }, join: { $0.merged(with: $1) })
    }
    @Test func attempt() {
        checkSemilattice("attempt", seed: 4, make: { $0.attempt() }, join: { $0.merged(with: $1) })
    }
    @Test func certificate() {
        checkSemilattice("certificate", seed: 5, make: { $0.certificate() }, join: { $0.merged(with: $1) })
    }

    @Test("whole replica states join as a semilattice")
    func replicaState() {
        checkSemilattice(
            "state", seed: 6,
            make: { gen in
                var s = ReplicaState()
                for _ in 0..<gen.int(0...6) {
                    let record: RecordChange
                    switch gen.int(0...4) {
                    case 0:
                        let l = gen.learner()
                        record = .learner(LearnerChange(
                            learnerID: l.learnerID, nationalID: l.nationalID, fullName: l.fullName?.value,
                            role: l.role?.value))
                    case 1: record = .enrollment(gen.enrollment())
                    case 2: record = .progress(gen.progress())
                    case 3:
                        guard case .value(let a) = gen.attempt() else { continue }
                        record = .attempt(a)
                    default: record = .certificate(gen.certificate())
                    }
                    s.apply(Change(hlc: gen.stamp(), record: record), from: gen.node())
                }
                return s
            }, join: { $0.merged(with: $1) })
    }
}

@Suite("Merge rules, case by case")
struct MergeRuleTests {
    let n1 = NodeID(bytes: Data(repeating: 1, count: 32))!
    let n2 = NodeID(bytes: Data(repeating: 2, count: 32))!

    @Test("LWW: the later stamp wins; on equal stamps the higher node id wins")
    func lww() {
        let early = LWWRegister(value: "old", stamp: HLCTimestamp(milliseconds: 1, counter: 0), node: n2)
        let late = LWWRegister(value: "new", stamp: HLCTimestamp(milliseconds: 1, counter: 1), node: n1)
        #expect(early.merged(with: late).value == "new")
        #expect(late.merged(with: early).value == "new")
        let tieLow = LWWRegister(value: "a", stamp: .zero, node: n1)
        let tieHigh = LWWRegister(value: "b", stamp: .zero, node: n2)
        #expect(tieLow.merged(with: tieHigh).value == "b")
    }

    @Test("LWW is per field: concurrent edits of different fields both survive")
    func perField() {
        let s1 = HLCTimestamp(milliseconds: 10, counter: 0), s2 = HLCTimestamp(milliseconds: 11, counter: 0)
        let a = LearnerChange(learnerID: "L", nationalID: "001234567890", fullName: "Nguyễn Văn A")
            .record(stamp: s2, node: n1)
        let b = LearnerChange(learnerID: "L", nationalID: "001234567890", role: .civilServant, unit: "UBND xã")
            .record(stamp: s1, node: n2)
        let m = a.merged(with: b)
        #expect(m.fullName?.value == "Nguyễn Văn A")
        #expect(m.role?.value == .civilServant)
        #expect(m.unit?.value == "UBND xã")
    }

    @Test("enrollment: odd is enrolled, the longer history wins, enroll/withdraw are idempotent")
    func enrollment() {
        #expect(EnrollmentRecord.lengthAfterEnroll(0) == 1)
        #expect(EnrollmentRecord.lengthAfterEnroll(1) == 1)
        #expect(EnrollmentRecord.lengthAfterWithdraw(1) == 2)
        #expect(EnrollmentRecord.lengthAfterWithdraw(2) == 2)
        #expect(EnrollmentRecord.lengthAfterEnroll(2) == 3)
        let withdrawn = EnrollmentRecord(learnerID: "L", courseID: "C", length: 2)
        let enrolled = EnrollmentRecord(learnerID: "L", courseID: "C", length: 1)
        #expect(!enrolled.merged(with: withdrawn).isEnrolled)
        let reEnrolled = EnrollmentRecord(learnerID: "L", courseID: "C", length: 3)
        #expect(withdrawn.merged(with: reEnrolled).isEnrolled)
    }

    @Test("progress: max percent, earliest non-null completion")
    func progress() {
        let a = ProgressRecord(learnerID: "L", lessonID: "X", percent: 100, completedAt: 50)
        let b = ProgressRecord(learnerID: "L", lessonID: "X", percent: 40, completedAt: nil)
        let c = ProgressRecord(learnerID: "L", lessonID: "X", percent: 100, completedAt: 30)
        #expect(a.merged(with: b) == a)
        #expect(a.merged(with: c).completedAt == 30)
        #expect(b.merged(with: c) == c)
    }

    @Test("attempt: same content is a no-op; different content under one id is a conflict forever")
    func attempt() {
        let a = AttemptRecord(attemptID: "A", learnerID: "L", quizID: "Q", answers: [1], score: 1, maxScore: 2, startedAt: 1, finishedAt: 2)
        let b = AttemptRecord(attemptID: "A", learnerID: "L", quizID: "Q", answers: [0], score: 0, maxScore: 2, startedAt: 1, finishedAt: 2)
        #expect(AttemptState.value(a).merged(with: .value(a)) == .value(a))
        #expect(AttemptState.value(a).merged(with: .value(b)) == .conflict)
        #expect(AttemptState.conflict.merged(with: .value(a)) == .conflict)
    }

    @Test("certificate: revocation never clears; the earliest issue time stays")
    func certificate() {
        let issued = CertificateRecord(certificateID: "Z", learnerID: "L", courseID: "C", issuedAt: 10)
        let revoked = CertificateRecord(certificateID: "Z", learnerID: "L", courseID: "C", issuedAt: 12, revokedAt: 20)
        #expect(issued.merged(with: revoked).isRevoked)
        #expect(revoked.merged(with: issued).isRevoked)
        #expect(issued.merged(with: revoked).issuedAt == 10)
    }

    @Test("version vectors: pointwise max, dominance")
    func versionVector() {
        let o1 = Origin(node: n1, epoch: 1), o2 = Origin(node: n2, epoch: 1)
        let a = VersionVector([o1: 3, o2: 1]), b = VersionVector([o1: 2, o2: 5])
        let m = a.merged(with: b)
        #expect(m[o1] == 3 && m[o2] == 5)
        #expect(m.dominates(a) && m.dominates(b) && !a.dominates(b))
    }
}
