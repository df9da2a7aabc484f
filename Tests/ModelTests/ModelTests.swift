import Foundation
import Merge
import Model
import Sodium
import Testing

/// Model's rules hold without a database, a file or a socket: these tests build values and check them.
@Suite("Model: pure values and rules")
struct ModelTests {
    static let key = SigningKeyPair.generate()
    static let origin = Origin(node: NodeID(bytes: key.publicKey)!, epoch: 7)
    static let changes = [
        Change(hlc: .zero, record: .enrollment(EnrollmentRecord(learnerID: "l", courseID: "c", length: 1))),
        Change(hlc: .zero, record: .progress(ProgressRecord(learnerID: "l", lessonID: "c-l1", percent: 40, completedAt: nil))),
    ]

    @Test("a sealed batch verifies, and any change to its body breaks the signature and the id")
    func sealedBatchVerifies() {
        let batch = Batch.seal(changes: Self.changes, origin: Self.origin, firstSeq: 5, previousID: Batch.zeroID, signer: Self.key)
        #expect(batch.firstSeq == 5 && batch.lastSeq == 6 && batch.changeCount == 2)
        #expect(batch.hasValidSignature && batch.hasValidRange)
        #expect(batch.id == Blake2b.hash(batch.header))
        var body = batch.body
        body[body.count - 1] ^= 1
        let altered = Batch(
            origin: batch.origin, firstSeq: batch.firstSeq, lastSeq: batch.lastSeq, previousID: batch.previousID,
            body: body, signature: batch.signature)
        #expect(!altered.hasValidSignature)
        #expect(altered.id != batch.id)
    }

    @Test("an impossible range a peer claims counts zero changes and is not valid, without trapping")
    func impossibleRange() {
        let batch = Batch(
            origin: Self.origin, firstSeq: 9, lastSeq: 3, previousID: Batch.zeroID, body: Data(), signature: Data())
        #expect(batch.changeCount == 0)
        #expect(!batch.hasValidRange)
        let huge = Batch(
            origin: Self.origin, firstSeq: 0, lastSeq: .max, previousID: Batch.zeroID, body: Data(), signature: Data())
        #expect(huge.changeCount == Int.max)
        #expect(!huge.hasValidRange)
    }

    @Test("a course with nothing required is never complete; complete and enrolled is eligible")
    func courseCompletion() {
        let empty = CourseStatus(
            courseID: "c", isEnrolled: true, requiredLessons: 0, completedRequiredLessons: 0, quizzes: 0, passedQuizzes: 0)
        #expect(!empty.isComplete && !empty.isEligible)
        let done = CourseStatus(
            courseID: "c", isEnrolled: false, requiredLessons: 2, completedRequiredLessons: 2, quizzes: 1, passedQuizzes: 1)
        #expect(done.isComplete && !done.isEligible)
        let enrolled = CourseStatus(
            courseID: "c", isEnrolled: true, requiredLessons: 2, completedRequiredLessons: 2, quizzes: 1, passedQuizzes: 1)
        #expect(enrolled.isEligible)
        let missing = CourseStatus(
            courseID: "c", isEnrolled: true, requiredLessons: 2, completedRequiredLessons: 1, quizzes: 1, passedQuizzes: 0)
        #expect(!missing.isComplete)
        #expect(missing.missingSummary == "1 required lesson(s) not complete, 1 quiz(zes) not passed")
    }

    @Test("ids are derived the same way everywhere; national IDs are 12 digits")
    func identity() {
        let a = Identity.learnerID(nationalID: "001234567890")
        #expect(a == Identity.learnerID(nationalID: "001234567890"))
        #expect(a.count == 32 && a != Identity.learnerID(nationalID: "001234567891"))
        #expect(Identity.certificateID(learnerID: a, courseID: "c") != Identity.certificateID(learnerID: a, courseID: "d"))
        #expect(Identity.isWellFormedNationalID("001234567890"))
        #expect(!Identity.isWellFormedNationalID("00123456789") && !Identity.isWellFormedNationalID("00123456789x"))
    }

    @Test("the validator refuses what the rules refuse, from an in-memory curriculum index")
    func validator() throws {
        var index = CurriculumIndex()
        index.courses = ["c"]
        index.lessons = ["c-l1"]
        let now = ProtocolLimits.programmeStartMilliseconds + 86_400_000
        let validator = Validator(curriculum: index, now: now)
        try validator.validate(.progress(ProgressRecord(learnerID: "l", lessonID: "c-l1", percent: 100, completedAt: now)))
        #expect(throws: RecordValidationError.percentOutOfRange(101)) {
            try validator.validate(.progress(ProgressRecord(learnerID: "l", lessonID: "c-l1", percent: 101, completedAt: nil)))
        }
        #expect(throws: RecordValidationError.unknownLesson("x")) {
            try validator.validate(.progress(ProgressRecord(learnerID: "l", lessonID: "x", percent: 10, completedAt: nil)))
        }
        #expect(throws: RecordValidationError.unknownCourse("d")) {
            try validator.validate(.enrollment(EnrollmentRecord(learnerID: "l", courseID: "d", length: 1)))
        }
        let ahead = now + Validator.maxFutureMilliseconds + 60_000
        #expect(throws: RecordValidationError.dateInFuture(field: "completion time", aheadSeconds: (ahead - now) / 1000)) {
            try validator.validate(.progress(ProgressRecord(learnerID: "l", lessonID: "c-l1", percent: 100, completedAt: ahead)))
        }
    }

    @Test("the compiled-in administrative units: 34 provinces, 3,321 communes")
    func adminUnits() throws {
        let units = try AdminUnits.bundled()
        #expect(units.provinces.count == 34)
        #expect(units.provinces.reduce(0) { $0 + $1.communes.count } == 3_321)
    }
}
