public import Foundation
public import Merge

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
        public var description: String { "line \(line): \(reason)" }
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
            return .success(.attempt(learnerID: id, quizID: quiz, answers: answers, score: score, maxScore: max,
                                     startedAt: started, finishedAt: finished))
        default:
            return fail("unknown \"type\" \"\(l.type)\"; one of learner, enroll, withdraw, progress, attempt, certify")
        }
    }
}

extension NodeStore {
    /// Imports JSON Lines: good lines are recorded, bad ones reported with line numbers and reasons.
    /// Lines are recorded in chunks; a chunk with an invalid event is retried line by line, so
    /// one bad line never costs the good ones.
    public func importEvents(_ text: String, chunk: Int = 500) throws -> (recorded: Int, errors: [EventImport.LineError]) {
        var errors = [EventImport.LineError]()
        var pending = [(line: Int, event: LocalEvent)]()
        var recorded = 0
        func flush() throws {
            guard !pending.isEmpty else { return }
            do {
                try record(pending.map(\.event))
                recorded += pending.count
            } catch is ValidationError {
                for p in pending {
                    do {
                        try record([p.event])
                        recorded += 1
                    } catch let e as ValidationError {
                        errors.append(.init(line: p.line, reason: e.description))
                    }
                }
            }
            pending.removeAll()
        }
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            switch EventImport.parse(line, line: i + 1) {
            case .success(let e): pending.append((i + 1, e))
            case .failure(let e): errors.append(e)
            }
            if pending.count >= chunk { try flush() }
        }
        try flush()
        return (recorded, errors.sorted { $0.line < $1.line })
    }
}
