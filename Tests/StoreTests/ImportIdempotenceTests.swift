import Foundation
import Merge
import Model
import Sodium
import Store
import TestSupport
import Testing

/// Random JSON Lines files over a few learners: good lines of every type, lines the validator
/// refuses (too high a score, a certificate not earned, a second home commune, …), malformed
/// lines and blank lines. Times are in December 2025, before the tests' frozen clock.
struct ImportFileGenerator {
    static let courses = ["ksn-101", "attt-101", "ai-qh"]
    static let lessons = ["ksn-101-l1", "ksn-101-l2", "ksn-101-l3", "attt-101-l1", "attt-101-l2", "attt-101-l3", "ai-qh-l1"]
    static let quizzes = [("ksn-101-quiz", 5), ("attt-101-quiz", 4), ("ai-qh-quiz", 3)]

    static func time(_ rng: inout SeededGenerator) -> String {
        let day = Int.random(in: 1...30, using: &rng), hour = Int.random(in: 0...16, using: &rng)
        let minute = Int.random(in: 0...59, using: &rng)
        return Bool.random(using: &rng)
            ? String(format: "2025-12-%02dT%02d:%02d:00Z", day, hour, minute)
            : String(format: "2025-12-%02dT%02d:%02d:00+07:00", day, hour + 7, minute)
    }

    static func line(_ rng: inout SeededGenerator, people: Int = 5) -> String {
        let nid = nationalID(Int.random(in: 0..<people, using: &rng))
        switch Int.random(in: 0..<20, using: &rng) {
        case 0, 1:
            let name = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Chi", "Phạm Dũng"].pick(using: &rng)!
            let role = Role.allCases.pick(using: &rng)!.rawValue
            let home = SampleCurriculum.communes.pick(using: &rng)!  // a second, different home is refused
            return #"{"type":"learner","national_id":"\#(nid)","full_name":"\#(name)","role":"\#(role)","unit":"UBND xã","home_commune":\#(home)}"#
        case 2, 3: return #"{"type":"enroll","national_id":"\#(nid)","course":"\#(courses.pick(using: &rng)!)"}"#
        case 4: return #"{"type":"withdraw","national_id":"\#(nid)","course":"\#(courses.pick(using: &rng)!)"}"#
        case 5, 6, 7:
            let percent = [10, 50, 100, 100, 100, 150].pick(using: &rng)!
            return #"{"type":"progress","national_id":"\#(nid)","lesson":"\#(lessons.pick(using: &rng)!)","percent":\#(percent),"at":"\#(time(&rng))"}"#
        case 8, 9, 10, 11:
            let (quiz, n) = quizzes.pick(using: &rng)!
            let answers = (0..<n).map { _ in String(Int.random(in: -1...3, using: &rng)) }.joined(separator: ",")
            let score = Int.random(in: 0...(2 * n + 1), using: &rng)  // 2n + 1: refused
            let start = Int.random(in: 1...28, using: &rng)
            let started = String(format: "2025-12-%02dT08:%02d:00Z", start, Int.random(in: 0...30, using: &rng))
            let finished = String(format: "2025-12-%02dT09:%02d:%02dZ", start, Int.random(in: 0...59, using: &rng), Int.random(in: 0...59, using: &rng))
            return #"{"type":"attempt","national_id":"\#(nid)","quiz":"\#(quiz)","answers":[\#(answers)],"score":\#(score),"max_score":\#(2 * n),"started_at":"\#(started)","finished_at":"\#(finished)"}"#
        case 12, 13: return #"{"type":"certify","national_id":"\#(nid)","course":"\#(courses.pick(using: &rng)!)"}"#
        case 14 where Int.random(in: 0..<3, using: &rng) == 0:
            return certificationRun(&rng, nid: nid)
        case 14: return ["not json", #"{"type":"teleport","national_id":"\#(nid)"}"#, #"{"type":"enroll"}"#].pick(using: &rng)!
        case 15: return ""
        default:
            // Learners early and often, so most later lines have someone to be about.
            return #"{"type":"learner","national_id":"\#(nid)","full_name":"Hồ Văn Em","role":"civil_servant","unit":"UBND xã","home_commune":70}"#
        }
    }

    /// A run of lines that earns a course certificate (often: the learner may have withdrawn or
    /// have another home commune), so certificates, completions and certified totals are exercised.
    static func certificationRun(_ rng: inout SeededGenerator, nid: String) -> String {
        let (course, quiz, n) = [("ksn-101", "ksn-101-quiz", 5), ("attt-101", "attt-101-quiz", 4)].pick(using: &rng)!
        var out = [
            #"{"type":"learner","national_id":"\#(nid)","full_name":"Võ Thị Giang","role":"civil_servant","unit":"UBND xã","home_commune":70}"#,
            #"{"type":"enroll","national_id":"\#(nid)","course":"\#(course)"}"#,
        ]
        for lesson in lessons where lesson.hasPrefix(course) {
            out.append(#"{"type":"progress","national_id":"\#(nid)","lesson":"\#(lesson)","percent":100,"at":"\#(time(&rng))"}"#)
        }
        let answers = (0..<n).map { String($0 % 4) }.joined(separator: ",")
        out.append(#"{"type":"attempt","national_id":"\#(nid)","quiz":"\#(quiz)","answers":[\#(answers)],"score":\#(2 * n),"max_score":\#(2 * n),"started_at":"2025-12-20T08:00:00Z","finished_at":"2025-12-20T08:1\#(Int.random(in: 0...9, using: &rng)):00Z"}"#)
        out.append(#"{"type":"certify","national_id":"\#(nid)","course":"\#(course)"}"#)
        return out.joined(separator: "\n")
    }

    static func file(_ rng: inout SeededGenerator, lines: Int, people: Int = 5) -> String {
        (0..<lines).map { _ in line(&rng, people: people) }.joined(separator: "\n") + (Bool.random(using: &rng) ? "\n" : "")
    }
}

/// Interrupts an import after a number of committed transactions, as `kill` does.
struct Killed: Error {}

extension NodeStore {
    /// Every local change, sealed one per batch, as signed bodies: the change log, byte for byte.
    func changeLog() throws -> [Data] {
        try sealPending(maxChanges: 1)
        return try batches(after: VersionVector()).map(\.body)
    }

    var pending: Int { get throws { try facts(acknowledged: VersionVector()).pendingChanges } }
}

@Suite("Import is idempotent and resumable")
struct ImportIdempotenceTests {
    /// A hub that merged everything `site` sealed: its national figures and digest.
    static func hubView(of site: Replica) throws -> (NationalReport.Figures, [NationalReport.Commune], Data) {
        let hub = try Replica(clock: site.clock)
        defer { hub.dir.remove() }
        try site.store.sealPending()
        let report = try hub.store.apply(site.store.batches(after: VersionVector()))
        #expect(report.refused.isEmpty && report.quarantinedChanges == 0)
        let national = try hub.store.nationalReport()
        return (national.national, national.communes, try hub.store.stateDigest())
    }

    @Test("any prefix of an import, then the whole import, equals the whole import once", arguments: 0..<40)
    func prefixThenWhole(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed &* 104_729 &+ 17)
        let text = ImportFileGenerator.file(&rng, lines: Int.random(in: 1...160, using: &rng))
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let key = SigningKeyPair.generate()
        let clean = try Replica(key: key), resumed = try Replica(key: key)  // same node, same frozen clock
        defer { clean.dir.remove(); resumed.dir.remove() }

        let once = try clean.store.runImport(text, chunk: Int.random(in: 1...60, using: &rng))
        #expect(once.committedThrough == lines.lastIndex { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.map { $0 + 1 } ?? 0)

        // One to three interruptions: a truncated copy of the file, or a kill after some commits.
        var acknowledged = 0
        for _ in 0..<Int.random(in: 1...3, using: &rng) {
            if Bool.random(using: &rng) {
                let k = Int.random(in: 0...lines.count, using: &rng)
                acknowledged += try resumed.store.runImport(
                    lines.prefix(k).joined(separator: "\n"), chunk: Int.random(in: 1...60, using: &rng)
                ).recorded
            } else {
                let commits = Int.random(in: 0...4, using: &rng)
                var seen = 0
                #expect(throws: Killed.self) {
                    try resumed.store.runImport(text, chunk: Int.random(in: 1...30, using: &rng)) { c in
                        acknowledged += c.recorded
                        seen += 1
                        if seen > commits { throw Killed() }
                    }
                    throw Killed()  // the file was shorter than the kill: killed at the end
                }
            }
            // Nothing acknowledged is missing, nothing unacknowledged is there.
            #expect(try resumed.store.importJournalCounts().recorded == acknowledged)
        }
        let rest = try resumed.store.runImport(text, chunk: Int.random(in: 1...60, using: &rng))
        #expect(rest.alreadyImported == acknowledged)
        #expect(rest.recorded + rest.alreadyImported == once.recorded)
        #expect(rest.errors.map(\.line) == once.errors.map(\.line), "the same lines refused, for the same reasons")
        #expect(rest.errors.map(\.reason) == once.errors.map(\.reason))

        #expect(try resumed.store.stateDigest() == clean.store.stateDigest())
        #expect(try resumed.store.pending == clean.store.pending)
        #expect(try resumed.store.importJournalCounts() == clean.store.importJournalCounts())

        // Running the whole file yet again records nothing.
        let digest = try clean.store.stateDigest(), pending = try clean.store.pending
        let again = try clean.store.runImport(text, chunk: Int.random(in: 1...60, using: &rng))
        #expect(again.recorded == 0 && again.alreadyImported == once.recorded)
        #expect(again.errors.map(\.line) == once.errors.map(\.line))
        #expect(try clean.store.stateDigest() == digest && clean.store.pending == pending)

        // The change logs are the same, change for change; so are the hub's national figures.
        #expect(try resumed.store.changeLog() == clean.store.changeLog())
        let (hubClean, hubResumed) = (try Self.hubView(of: clean), try Self.hubView(of: resumed))
        #expect(hubResumed.0 == hubClean.0)
        #expect(hubResumed.1 == hubClean.1)
        #expect(hubResumed.2 == hubClean.2)
    }

    @Test("enroll and withdraw lines never flip on a re-run; a new file's lines are new events")
    func enrollmentIsNotToggledByReruns() throws {
        let r = try Replica()
        defer { r.dir.remove() }
        let id = Identity.learnerID(nationalID: nationalID(1))
        func enrolled() throws -> Bool { try r.store.courseStatus(learnerID: id, courseID: "ksn-101").isEnrolled }
        let learner = #"{"type":"learner","national_id":"\#(nationalID(1))","full_name":"Lê Chi","role":"other","unit":"UBND","home_commune":70}"#
        let enroll = #"{"type":"enroll","national_id":"\#(nationalID(1))","course":"ksn-101"}"#
        let withdraw = #"{"type":"withdraw","national_id":"\#(nationalID(1))","course":"ksn-101"}"#

        let day1 = [learner, enroll, withdraw].joined(separator: "\n")
        #expect(try r.store.runImport(day1).recorded == 3)
        let pending = try r.store.pending
        for _ in 0..<3 { #expect(try r.store.runImport(day1).alreadyImported == 3) }
        #expect(try !enrolled() && r.store.pending == pending, "re-runs change nothing")

        // The same file with a line appended: only the new line is recorded.
        let grown = day1 + "\n" + enroll + "\n"
        let g = try r.store.runImport(grown)
        #expect(g.recorded == 1 && g.alreadyImported == 3)
        #expect(try enrolled())
        // Running the shorter file again after the longer one must not withdraw.
        #expect(try r.store.runImport(day1).alreadyImported == 3)
        #expect(try enrolled())

        // Another file — tomorrow's export — whose lines look like earlier ones: new events.
        #expect(try r.store.runImport(withdraw).recorded == 1)
        #expect(try !enrolled())
        #expect(try r.store.runImport(enroll).recorded == 1)
        #expect(try enrolled())
        #expect(try r.store.runImport(enroll).alreadyImported == 1, "and that file re-run is skipped too")
    }

    @Test("an attempt's id comes from the attempt: a UUIDv7 at its finish time, the same for every spelling and file")
    func deterministicAttemptIDs() throws {
        let r = try Replica()
        defer { r.dir.remove() }
        let nid = nationalID(2)
        let learner = #"{"type":"learner","national_id":"\#(nid)","full_name":"Lê Chi","role":"other","unit":"UBND","home_commune":70}"#
        let a = #"{"type":"attempt","national_id":"\#(nid)","quiz":"ksn-101-quiz","answers":[0,2,1,3,-1],"score":8,"max_score":10,"started_at":"2025-12-01T09:40:00+07:00","finished_at":"2025-12-01T09:52:00.250+07:00"}"#
        // Same attempt, other key order, spaces and time zone.
        let b = #"{ "finished_at":"2025-12-01T02:52:00.250Z", "type":"attempt", "max_score":10, "score":8, "quiz":"ksn-101-quiz","national_id":"\#(nid)","answers":[0, 2, 1, 3, -1],"started_at":"2025-12-01T02:40:00Z"}"#
        guard case .success(.attemptWithID(let idA, _, _, _, _, _, _, let finished)) = EventImport.parse(Substring(a), line: 1),
              case .success(.attemptWithID(let idB, _, _, _, _, _, _, _)) = EventImport.parse(Substring(b), line: 1)
        else { Issue.record("attempt lines must parse to attempts with ids"); return }
        #expect(idA == idB)
        #expect(RecordID.isUUIDv7(idA))
        #expect(finished == 1_764_557_520_250)
        #expect(idA.hasPrefix(String(format: "%08x-%04x", UInt64(finished) >> 16, UInt64(finished) & 0xFFFF)))
        // A different score: a different attempt.
        guard case .success(.attemptWithID(let idC, _, _, _, _, _, _, _)) =
            EventImport.parse(Substring(a.replacingOccurrences(of: #""score":8"#, with: #""score":9"#)), line: 1)
        else { Issue.record("must parse"); return }
        #expect(idC != idA && RecordID.isUUIDv7(idC))

        #expect(try r.store.runImport(learner + "\n" + a).recorded == 2)
        let pending = try r.store.pending
        // The same attempt in another file (another chain: not skipped by the journal) is still one attempt,
        // and recording it again changes nothing, so nothing is replicated.
        let other = try r.store.runImport(b)
        #expect(other.recorded == 1 && other.alreadyImported == 0)
        #expect(try r.store.attemptsCountForTests("attempt") == 1)
        #expect(try r.store.pending == pending)
    }

    @Test("a refused line is decided once: re-runs re-report it, --retry-refused tries it again")
    func refusedLinesAreJournaled() throws {
        let r = try Replica()
        defer { r.dir.remove() }
        let nid = nationalID(3)
        let id = Identity.learnerID(nationalID: nid)
        let file = [
            #"{"type":"enroll","national_id":"\#(nid)","course":"ksn-101"}"#,  // no learner yet: refused
            #"{"type":"learner","national_id":"\#(nid)","full_name":"Lê Chi","role":"other","unit":"UBND","home_commune":70}"#,
            "not json",
        ].joined(separator: "\n")
        let first = try r.store.runImport(file)
        #expect(first.recorded == 1 && first.errors.map(\.line) == [1, 3] && first.refusedEarlier == 0)
        // A re-run does not record line 1 out of its order (the learner now exists): it reports it again.
        let again = try r.store.runImport(file)
        #expect(again.recorded == 0 && again.alreadyImported == 1)
        #expect(again.errors.map(\.line) == [1, 3] && again.refusedEarlier == 1)
        #expect(again.errors[0].reason == first.errors[0].reason && again.errors[0].earlier)
        #expect(try !r.store.courseStatus(learnerID: id, courseID: "ksn-101").isEnrolled)
        // Asked to, it tries the refused line again, once.
        let retried = try r.store.runImport(file, retryRefused: true)
        #expect(retried.recorded == 1 && retried.errors.map(\.line) == [3])
        #expect(try r.store.courseStatus(learnerID: id, courseID: "ksn-101").isEnrolled)
        #expect(try r.store.runImport(file, retryRefused: true).recorded == 0)
        #expect(try r.store.importJournalCounts() == (recorded: 2, refused: 0))
    }

    @Test("every committed transaction is reported once it is on disk, with its lines")
    func commitsAreReported() throws {
        let r = try Replica()
        defer { r.dir.remove() }
        let text = (0..<23).map { i in
            i == 4 ? "" : #"{"type":"learner","national_id":"\#(nationalID(i))","full_name":"Lê Chi","role":"other","unit":"UBND","home_commune":70}"#
        }.joined(separator: "\n") + "\nnot json"
        var commits = [EventImport.Commit]()
        #expect(throws: Killed.self) {
            try r.store.runImport(text, chunk: 10) { c in
                commits.append(c)
                if commits.count == 2 { throw Killed() }
            }
        }
        #expect(commits.map(\.lines) == [1...11, 12...21])  // 10 non-blank lines each; blank line 5 inside the first
        #expect(commits.map(\.recorded) == [10, 10])
        // Reopened (a new process): exactly what was reported is there.
        let reopened = try r.reopen()
        #expect(try reopened.importJournalCounts().recorded == 20)
        let rest = try reopened.runImport(text, chunk: 10)
        #expect(rest.alreadyImported == 20 && rest.committedThrough == 24)
        // CRLF copy of the same file: the same lines.
        #expect(try reopened.runImport(text.replacingOccurrences(of: "\n", with: "\r\n"), chunk: 7).recorded == 0)
    }
}
