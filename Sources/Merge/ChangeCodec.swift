public import Foundation

/// The binary body of a batch: a count, then each change as `hlc, kind, fields`.
///
/// The encoding is deterministic (one byte string per list of changes), so the same changes
/// always hash and sign the same. Decoding enforces hard limits: a hostile peer cannot make a
/// node allocate more than a frame's worth.
public enum ChangeCodec {
    public static let maxChangesPerBatch = 20_000
    public static let maxTextLength = 1_024
    public static let maxAnswers = 1_000

    public static func encode(_ changes: [Change]) -> [UInt8] {
        var w = ByteWriter(capacity: changes.count * 64 + 8)
        w.varint(UInt64(changes.count))
        for change in changes { encode(change, into: &w) }
        return w.bytes
    }

    public static func encode(_ change: Change, into w: inout ByteWriter) {
        w.fixed64(change.hlc.rawValue)
        w.u8(change.record.kind.rawValue)
        switch change.record {
        case .learner(let c):
            w.compactID(c.learnerID)
            w.string(c.nationalID)
            // A presence bitmap keeps absent fields absent (absent ≠ empty string).
            var present: UInt8 = 0
            if c.fullName != nil { present |= 1 }
            if c.role != nil { present |= 2 }
            if c.unit != nil { present |= 4 }
            if c.homeCommune != nil { present |= 8 }
            w.u8(present)
            if let v = c.fullName { w.string(v) }
            if let v = c.role { w.string(v.rawValue) }
            if let v = c.unit { w.string(v) }
            if let v = c.homeCommune { w.zigzag(Int64(v)) }
        case .enrollment(let r):
            w.compactID(r.learnerID)
            w.string(r.courseID)
            w.varint(r.length)
        case .progress(let r):
            w.compactID(r.learnerID)
            w.string(r.lessonID)
            w.zigzag(Int64(r.percent))
            w.zigzag(r.completedAt ?? -1)
        case .attempt(let r):
            w.compactID(r.attemptID)
            w.compactID(r.learnerID)
            w.string(r.quizID)
            w.varint(UInt64(r.answers.count))
            for a in r.answers { w.zigzag(Int64(a)) }
            w.zigzag(Int64(r.score))
            w.zigzag(Int64(r.maxScore))
            w.zigzag(r.startedAt)
            w.zigzag(r.finishedAt)
        case .certificate(let r):
            w.compactID(r.certificateID)
            w.compactID(r.learnerID)
            w.string(r.courseID)
            w.zigzag(r.issuedAt)
            w.zigzag(r.revokedAt ?? -1)
        case .roster(let r):
            w.compactID(r.learnerID)
            w.string(r.nationalID)
            w.string(r.entry.fullName)
            w.string(r.entry.role.rawValue)
            w.string(r.entry.unit)
            w.zigzag(Int64(r.entry.commune))
            w.u8(r.entry.active ? 1 : 0)
        }
    }

    public static func decode(_ bytes: some ContiguousBytes) throws(DecodeError) -> [Change] {
        let result: Result<[Change], DecodeError> = bytes.withUnsafeBytes { raw in
            var r = ByteReader(raw)
            do {
                let n = try r.varint("change count")
                guard n <= UInt64(maxChangesPerBatch) else {
                    throw DecodeError.tooLong(field: "batch", length: Int(clamping: n), limit: maxChangesPerBatch)
                }
                var out = [Change]()
                out.reserveCapacity(Int(n))
                for _ in 0..<n { out.append(try decodeChange(&r)) }
                guard r.remaining == 0 else { throw DecodeError.trailingBytes(r.remaining) }
                return .success(out)
            } catch let e as DecodeError {
                return .failure(e)
            } catch {
                return .failure(.invalidValue(field: "batch"))
            }
        }
        return try result.get()
    }

    public static func decodeChange(_ r: inout ByteReader) throws(DecodeError) -> Change {
        let hlc = HLCTimestamp(rawValue: try r.fixed64("hlc"))
        let kindByte = try r.u8("kind")
        guard let kind = RecordKind(rawValue: kindByte) else { throw .unknownKind(kindByte) }
        let t = maxTextLength
        let time: ClosedRange<Int> = -1...Int(Int64.max)
        switch kind {
        case .learner:
            var c = LearnerChange(
                learnerID: try r.compactID("learner id", limit: t), nationalID: try r.string("national id", limit: t))
            let present = try r.u8("field presence")
            guard present & ~0x0F == 0 else { throw .invalidValue(field: "field presence") }
            if present & 1 != 0 { c.fullName = try r.string("full name", limit: t) }
            if present & 2 != 0 {
                let raw = try r.string("role", limit: t)
                guard let role = Role(rawValue: raw) else { throw .unknownRole(raw) }
                c.role = role
            }
            if present & 4 != 0 { c.unit = try r.string("unit", limit: t) }
            if present & 8 != 0 { c.homeCommune = try r.int("home commune", in: 0...Int(Int32.max)) }
            return Change(hlc: hlc, record: .learner(c))
        case .enrollment:
            let record = EnrollmentRecord(
                learnerID: try r.compactID("learner id", limit: t), courseID: try r.string("course id", limit: t),
                length: try r.varint("causal length"))
            return Change(hlc: hlc, record: .enrollment(record))
        case .progress:
            let learner = try r.compactID("learner id", limit: t)
            let lesson = try r.string("lesson id", limit: t)
            let percent = try r.int("percent", in: Int(Int32.min)...Int(Int32.max))
            let completed = try r.int("completed at", in: time)
            let record = ProgressRecord(
                learnerID: learner, lessonID: lesson, percent: percent,
                completedAt: completed < 0 ? nil : Int64(completed))
            return Change(hlc: hlc, record: .progress(record))
        case .attempt:
            let id = try r.compactID("attempt id", limit: t)
            let learner = try r.compactID("learner id", limit: t)
            let quiz = try r.string("quiz id", limit: t)
            let count = try r.varint("answer count")
            guard count <= UInt64(maxAnswers) else {
                throw .tooLong(field: "answers", length: Int(clamping: count), limit: maxAnswers)
            }
            var answers = [Int]()
            answers.reserveCapacity(Int(count))
            for _ in 0..<count { answers.append(try r.int("answer", in: -1...Int(Int32.max))) }
            let record = AttemptRecord(
                attemptID: id, learnerID: learner, quizID: quiz, answers: answers,
                score: try r.int("score", in: Int(Int32.min)...Int(Int32.max)),
                maxScore: try r.int("max score", in: Int(Int32.min)...Int(Int32.max)),
                startedAt: Int64(try r.int("started at", in: 0...Int(Int64.max))),
                finishedAt: Int64(try r.int("finished at", in: 0...Int(Int64.max))))
            return Change(hlc: hlc, record: .attempt(record))
        case .certificate:
            let id = try r.compactID("certificate id", limit: t)
            let learner = try r.compactID("learner id", limit: t)
            let course = try r.string("course id", limit: t)
            let issued = try r.int("issued at", in: 0...Int(Int64.max))
            let revoked = try r.int("revoked at", in: time)
            let record = CertificateRecord(
                certificateID: id, learnerID: learner, courseID: course, issuedAt: Int64(issued),
                revokedAt: revoked < 0 ? nil : Int64(revoked))
            return Change(hlc: hlc, record: .certificate(record))
        case .roster:
            let learner = try r.compactID("learner id", limit: t)
            let nationalID = try r.string("national id", limit: t)
            let name = try r.string("full name", limit: t)
            let rawRole = try r.string("role", limit: t)
            guard let role = Role(rawValue: rawRole) else { throw .unknownRole(rawRole) }
            let unit = try r.string("unit", limit: t)
            let commune = try r.int("commune", in: 0...Int(Int32.max))
            let active = try r.u8("active")
            guard active <= 1 else { throw .invalidValue(field: "active") }
            let entry = RosterEntry(fullName: name, role: role, unit: unit, commune: commune, active: active == 1)
            return Change(hlc: hlc, record: .roster(RosterChange(learnerID: learner, nationalID: nationalID, entry: entry)))
        }
    }
}
