public import Foundation
public import Merge
public import Model
import Sodium

/// Reads learner events in JSON Lines (one object per line) for `hocvu site import`.
///
/// Schema (docs/import-format.md): every line has `"type"`; learners are named by
/// `"national_id"` (the learner id is derived from it); times are RFC 3339 strings.
///
/// ```json
/// {"type":"learner","national_id":"001234567890","full_name":"Nguyễn Văn A","role":"civil_servant","unit":"UBND xã","home_commune":70}
/// {"type":"enroll","national_id":"001234567890","course":"ksn-101"}
/// {"type":"withdraw","national_id":"001234567890","course":"ksn-101"}
/// {"type":"progress","national_id":"001234567890","lesson":"ksn-101-l1","percent":100,"at":"2026-03-01T09:30:00+07:00"}
/// {"type":"attempt","national_id":"001234567890","quiz":"ksn-101-quiz","answers":[0,2,1,3,0],"score":8,"max_score":10,"started_at":"2026-03-01T09:40:00+07:00","finished_at":"2026-03-01T09:52:00+07:00"}
/// {"type":"certify","national_id":"001234567890","course":"ksn-101"}
/// ```
public enum EventImport {
    /// One line that could not be used: its number (from 1) and why. Never the line itself:
    /// it may hold a national ID.
    public struct LineError: Error, Equatable, Sendable, CustomStringConvertible {
        public let line: Int
        public let reason: String
        /// Refused when an earlier run reached the line (the journal keeps the reason); not tried
        /// again unless asked (`--retry-refused`).
        public let earlier: Bool
        public var description: String { "line \(line): \(reason)" + (earlier ? " (refused on an earlier run)" : "") }

        public init(line: Int, reason: String, earlier: Bool = false) {
            self.line = line
            self.reason = reason
            self.earlier = earlier
        }
    }

    struct Line: Decodable {
        var type: String
        var national_id: String?
        var full_name: String?
        var role: String?
        var unit: String?
        var home_commune: Int?
        var course: String?
        var lesson: String?
        var percent: Int?
        var at: String?
        var quiz: String?
        var answers: [Int]?
        var score: Int?
        var max_score: Int?
        var started_at: String?
        var finished_at: String?
    }

    /// Parses one line into the event it records.
    public static func parse(_ text: Substring, line: Int) -> Result<LocalEvent, LineError> {
        func fail(_ why: String) -> Result<LocalEvent, LineError> { .failure(LineError(line: line, reason: why)) }
        guard let l = try? JSONDecoder().decode(Line.self, from: Data(text.utf8)) else {
            return fail("not a JSON object with a string \"type\"")
        }
        guard let nid = l.national_id else { return fail("missing \"national_id\"") }
        guard Identity.isWellFormedNationalID(nid) else { return fail("\"national_id\" must be exactly 12 digits") }
        let id = Identity.learnerID(nationalID: nid)
        func time(_ s: String?, _ field: String) -> Int64? {
            guard let s else { return nil }
            let f = ISO8601DateFormatter()
            f.formatOptions = [.withInternetDateTime]
            if let d = f.date(from: s) { return Int64(d.timeIntervalSince1970 * 1000) }
            f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return f.date(from: s).map { Int64($0.timeIntervalSince1970 * 1000) }
        }
        switch l.type {
        case "learner":
            guard let name = l.full_name, let roleText = l.role, let unit = l.unit, let home = l.home_commune else {
                return fail("a learner needs \"full_name\", \"role\", \"unit\" and \"home_commune\"")
            }
            guard let role = Role(rawValue: roleText) else {
                return fail("unknown role \"\(roleText)\"; one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return .success(.registerLearner(nationalID: nid, fullName: name, role: role, unit: unit, homeCommune: home))
        case "enroll", "withdraw", "certify":
            guard let course = l.course else { return fail("missing \"course\"") }
            switch l.type {
            case "enroll": return .success(.enroll(learnerID: id, courseID: course))
            case "withdraw": return .success(.withdraw(learnerID: id, courseID: course))
            default: return .success(.issueCertificate(learnerID: id, courseID: course))
            }
        case "progress":
            guard let lesson = l.lesson, let percent = l.percent else { return fail("progress needs \"lesson\" and \"percent\"") }
            guard let at = time(l.at, "at") else { return fail("\"at\" must be an RFC 3339 time, e.g. 2026-03-01T09:30:00+07:00") }
            return .success(.progress(learnerID: id, lessonID: lesson, percent: percent, at: at))
        case "attempt":
            guard let quiz = l.quiz, let answers = l.answers, let score = l.score, let max = l.max_score else {
                return fail("an attempt needs \"quiz\", \"answers\", \"score\" and \"max_score\"")
            }
            guard let started = time(l.started_at, "started_at"), let finished = time(l.finished_at, "finished_at") else {
                return fail("\"started_at\" and \"finished_at\" must be RFC 3339 times")
            }
            let attemptID = attemptID(
                learnerID: id, quizID: quiz, answers: answers, score: score, maxScore: max, startedAt: started,
                finishedAt: finished)
            return .success(.attemptWithID(
                attemptID: attemptID, learnerID: id, quizID: quiz, answers: answers, score: score, maxScore: max,
                startedAt: started, finishedAt: finished))
        default:
            return fail("unknown \"type\" \"\(l.type)\"; one of learner, enroll, withdraw, progress, attempt, certify")
        }
    }

    /// The id of an imported attempt, from what the attempt is: a UUIDv7 whose 48-bit time is
    /// `finishedAt` and whose 74 other bits are BLAKE2b over a canonical encoding of the learner,
    /// quiz, answers, score, maximum and both times (not the line's spelling: key order, spaces or
    /// time zone do not change it). The same attempt imported twice — a re-run, an edited file, the
    /// same export at another commune — is one attempt, as a certificate is one per learner and
    /// course. Two different attempts cannot share an id unless they are identical to the
    /// millisecond in every field.
    public static func attemptID(
        learnerID: String, quizID: String, answers: [Int], score: Int, maxScore: Int, startedAt: Int64,
        finishedAt: Int64
    ) -> String {
        var w = ByteWriter()
        w.raw(Array("hocvu/import-attempt/v1\0".utf8))
        for text in [learnerID, quizID] {
            w.varint(UInt64(text.utf8.count))
            w.raw(Array(text.utf8))
        }
        w.varint(UInt64(answers.count))
        for a in answers { w.zigzag(Int64(a)) }
        for v in [Int64(score), Int64(maxScore), startedAt, finishedAt] { w.zigzag(v) }
        let random = [UInt8](Blake2b.hash(w.bytes, outputLength: 16))
        var b = [UInt8](repeating: 0, count: 16)
        let ms = UInt64(max(0, finishedAt)) & 0xFFFF_FFFF_FFFF
        for i in 0..<6 { b[i] = UInt8(truncatingIfNeeded: ms >> (8 * (5 - i))) }
        for i in 6..<16 { b[i] = random[i] }
        b[6] = 0x70 | (b[6] & 0x0F)  // version 7
        b[8] = 0x80 | (b[8] & 0x3F)  // RFC 9562 variant
        let hex = Array(Data(b).hexString)
        return String(hex[0..<8]) + "-" + String(hex[8..<12]) + "-" + String(hex[12..<16]) + "-"
            + String(hex[16..<20]) + "-" + String(hex[20..<32])
    }

    /// The journal keys of a file's lines: BLAKE2b chained over its non-blank lines, so a line's
    /// key names the line *and everything before it*. Running the same file again, or the same
    /// file with lines appended, meets the same keys; another file (tomorrow's export, even with
    /// some lines alike) starts a chain of its own. A trailing carriage return is not part of a
    /// line, so CRLF and LF copies of a file are the same file.
    struct LineChain {
        private var state = Blake2b.hash(Array("hocvu/import-line/v1\0".utf8))

        /// The key of the next non-blank line (16 bytes).
        mutating func key(of line: Substring.UTF8View) -> Data {
            let h = Blake2b()
            h.update(state)
            h.update(Array(line))
            state = h.finalize()
            return state.prefix(16)
        }
    }

    /// A file's lines split on LF (CRLF too: the CR is dropped), numbered from 1, blank ones left out.
    static func lines(of text: String) -> [(number: Int, text: Substring)] {
        var out = [(number: Int, text: Substring)]()
        for (i, raw) in text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            var bytes = raw
            if bytes.last == 0x0D { bytes = bytes.dropLast() }
            let line = Substring(bytes)
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            out.append((i + 1, line))
        }
        return out
    }
}
