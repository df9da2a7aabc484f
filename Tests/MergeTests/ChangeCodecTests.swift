import Foundation
import Merge
import TestSupport
import Testing

@Suite("Change codec")
struct ChangeCodecTests {
    static let sample: [Change] = [
        Change(hlc: HLCTimestamp(milliseconds: 1, counter: 2), record: .learner(LearnerChange(
            learnerID: "abc", nationalID: "001234567890", fullName: "Trần Thị Hồng", role: .communeCouncilDelegate,
            unit: nil, homeCommune: 70))),
        Change(hlc: .zero, record: .enrollment(EnrollmentRecord(learnerID: "abc", courseID: "c", length: 3))),
        Change(hlc: .zero, record: .progress(ProgressRecord(learnerID: "abc", lessonID: "l", percent: 100, completedAt: 9))),
        Change(hlc: .zero, record: .progress(ProgressRecord(learnerID: "abc", lessonID: "l", percent: 5, completedAt: nil))),
        Change(hlc: .zero, record: .attempt(AttemptRecord(
            attemptID: "id", learnerID: "abc", quizID: "q", answers: [0, -1, 3], score: 4, maxScore: 6,
            startedAt: 1_700_000_000_000, finishedAt: 1_700_000_060_000))),
        Change(hlc: .zero, record: .certificate(CertificateRecord(
            certificateID: "z", learnerID: "abc", courseID: "c", issuedAt: 5, revokedAt: 6))),
    ]

    @Test("round-trips every record kind, absent fields stay absent")
    func roundTrip() throws {
        let bytes = ChangeCodec.encode(Self.sample)
        #expect(try ChangeCodec.decode(bytes) == Self.sample)
        #expect(ChangeCodec.encode(try ChangeCodec.decode(bytes)) == bytes)
    }

    @Test("every truncation is refused with an error, never a crash")
    func truncations() {
        let bytes = ChangeCodec.encode(Self.sample)
        for cut in 0..<bytes.count {
            #expect(throws: DecodeError.self) { try ChangeCodec.decode(Array(bytes[..<cut])) }
        }
    }

    @Test("random byte flips either decode to something or throw; they never trap", arguments: 0..<4)
    func mutations(seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        let bytes = ChangeCodec.encode(Self.sample)
        for _ in 0..<500 {
            var m = bytes
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                m[Int.random(in: 0..<m.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            _ = try? ChangeCodec.decode(m)
        }
    }

    @Test("hostile sizes are refused before allocating")
    func limits() {
        var w = ByteWriter()
        w.varint(UInt64(ChangeCodec.maxChangesPerBatch + 1))
        #expect(throws: DecodeError.tooLong(field: "batch", length: ChangeCodec.maxChangesPerBatch + 1, limit: ChangeCodec.maxChangesPerBatch)) {
            try ChangeCodec.decode(w.bytes)
        }
        var s = ByteWriter()
        s.varint(1); s.fixed64(0); s.u8(RecordKind.enrollment.rawValue); s.varint(1 << 40)
        #expect(throws: DecodeError.self) { try ChangeCodec.decode(s.bytes) }
        var k = ByteWriter()
        k.varint(1); k.fixed64(0); k.u8(99)
        #expect(throws: DecodeError.unknownKind(99)) { try ChangeCodec.decode(k.bytes) }
        #expect(throws: DecodeError.trailingBytes(1)) { try ChangeCodec.decode(ChangeCodec.encode([]) + [0]) }
    }

    @Test("identifiers travel as 16 bytes when canonical hex or UUID, as text otherwise, one encoding each")
    func compactIdentifiers() throws {
        let learner = "0123456789abcdef0123456789abcdef"
        let attempt = "0190f5a2-7b3c-7def-8abc-0123456789ab"
        func roundTrip(_ attemptID: String, _ learnerID: String) throws -> [UInt8] {
            let change = Change(hlc: .zero, record: .attempt(AttemptRecord(
                attemptID: attemptID, learnerID: learnerID, quizID: "q", answers: [1], score: 1, maxScore: 2,
                startedAt: 1, finishedAt: 2)))
            let bytes = ChangeCodec.encode([change])
            #expect(try ChangeCodec.decode(bytes) == [change])
            return bytes
        }
        let packed = try roundTrip(attempt, learner)
        let text = try roundTrip(attempt.uppercased(), learner.uppercased())  // not canonical: kept as text
        #expect(text.count - packed.count == (2 + 36 - 17) + (2 + 32 - 17))  // tag + length + text vs tag + 16 bytes
        _ = try roundTrip("a-1", "l")
        // The same packable value written as text is a second encoding of it: refused.
        var w = ByteWriter()
        w.varint(1)
        w.fixed64(0)
        w.u8(RecordKind.enrollment.rawValue)
        w.u8(0)
        w.string(learner)
        w.string("c")
        w.varint(1)
        #expect(throws: DecodeError.nonCanonical(field: "learner id")) { try ChangeCodec.decode(w.bytes) }
    }

    @Test("overlong varints are refused: one encoding per value (found by the fuzzer)")
    func overlongVarint() throws {
        #expect(throws: DecodeError.nonCanonical(field: "change count")) { try ChangeCodec.decode([0x80, 0x00]) }
        #expect(throws: DecodeError.nonCanonical(field: "change count")) { try ChangeCodec.decode([0x81, 0x80, 0x00]) }
        #expect(try ChangeCodec.decode([0x00]) == [])
    }

    @Test("UUIDv7 ids are time-ordered and well-formed")
    func uuidV7() {
        var rng = SeededGenerator(seed: 9)
        let a = RecordID.uuidV7(milliseconds: 1_000, using: &rng)
        let b = RecordID.uuidV7(milliseconds: 1_001, using: &rng)
        let c = RecordID.uuidV7(milliseconds: 1_001, using: &rng)
        #expect(RecordID.isUUIDv7(a) && RecordID.isUUIDv7(b))
        #expect(a < b && b != c, "same millisecond must still differ in its random bits")
        #expect(!RecordID.isUUIDv7("not-a-uuid"))
        #expect(!RecordID.isUUIDv7(a.uppercased()))
    }
}
