import Foundation
import Merge
import Sodium
import Store
import TestSupport
import Testing

/// Valid events for `people` learners: profile, enrollment, progress and several attempts each.
func largeImportFile(people: Int) -> String {
    var lines = [String]()
    for p in 0..<people {
        let nid = String(format: "0019%08d", p)
        lines.append(#"{"type":"learner","national_id":"\#(nid)","full_name":"Nguyễn Thị Hoa","role":"commune_council_delegate","unit":"HĐND xã","home_commune":70}"#)
        lines.append(#"{"type":"enroll","national_id":"\#(nid)","course":"ksn-101"}"#)
        lines.append(#"{"type":"progress","national_id":"\#(nid)","lesson":"ksn-101-l1","percent":100,"at":"2025-12-02T09:30:00+07:00"}"#)
        lines.append(#"{"type":"progress","national_id":"\#(nid)","lesson":"ksn-101-l2","percent":100,"at":"2025-12-03T09:30:00+07:00"}"#)
        for a in 0..<4 {
            lines.append(#"{"type":"attempt","national_id":"\#(nid)","quiz":"ksn-101-quiz","answers":[0,1,2,3,\#(a % 4)],"score":\#(6 + a),"max_score":10,"started_at":"2025-12-04T0\#(a):00:00Z","finished_at":"2025-12-04T0\#(a):12:34Z"}"#)
        }
        lines.append(#"{"type":"certify","national_id":"\#(nid)","course":"ksn-101"}"#)
    }
    return lines.joined(separator: "\n") + "\n"
}

@Suite("A full disk during an import", .serialized)
struct ImportDiskFullTests {
    @Test(
        "a full disk stops the import with the path and free space, acknowledges only what committed, and a re-run after freeing space equals a clean import",
        .enabled(if: SmallFilesystem.available, "skipped: mounting a small tmpfs needs root (CI runs as root)"))
    func fullDiskThenRerun() throws {
        let fs = try #require(SmallFilesystem.mount(kibibytes: 16 * 1024))
        defer { fs.unmount() }
        let key = SigningKeyPair.generate()
        let clock = TestClock()
        let path = fs.path + "/site.sqlite"
        let text = largeImportFile(people: 400)
        let total = text.split(separator: "\n").count

        let store = try NodeStore(path: path, identity: key, now: clock.function)
        try store.installCurriculum(SampleCurriculum.make())
        let filler = try fs.fill(leaving: 384 * 1024)

        var acknowledged = 0, reported = 0
        do {
            try store.runImport(text, chunk: 150) { c in
                acknowledged += c.recorded
                reported = c.lines.upperBound
            }
            Issue.record("the import was expected not to fit in the space left")
        } catch let stopped as EventImport.Stopped {
            #expect(stopped.isDiskFull)
            #expect(stopped.committedThrough == reported, "the error says what was committed, as reported")
            #expect(stopped.committedThrough > 0 && stopped.committedThrough < total, "part of the file fitted")
            #expect(stopped.failedLines.lowerBound == stopped.committedThrough + 1)
            let message = stopped.description
            #expect(message.hasPrefix("disk full: cannot write \(path) ("))
            #expect(message.contains(" free on the filesystem holding \(fs.path), by statvfs"))
            #expect(message.contains("lines \(stopped.failedLines.lowerBound)–\(stopped.failedLines.upperBound) were rolled back"))
            #expect(message.contains("Lines 1–\(stopped.committedThrough) are committed"))
            #expect(!message.contains("SQLite error"))
            #expect((stopped.freeBytes ?? .max) < 384 * 1024)
        }

        // A new process sees exactly what was acknowledged: nothing more, nothing less.
        let reopened = try NodeStore(path: path, identity: key, now: clock.function)
        #expect(try reopened.importJournalCounts().recorded == acknowledged)
        #expect(try reopened.attemptsCountForTests("attempt") <= acknowledged)

        // Still full: the re-run stops again, having recorded nothing twice.
        #expect(throws: EventImport.Stopped.self) { try reopened.runImport(text, chunk: 150) }
        #expect(try reopened.importJournalCounts().recorded >= acknowledged)

        // Space freed: the same command completes the import, with no operator surgery.
        try FileManager.default.removeItem(atPath: filler)
        let before = try reopened.importJournalCounts().recorded
        let rest = try reopened.runImport(text, chunk: 150)
        #expect(rest.errors.isEmpty)
        #expect(rest.alreadyImported == before)
        #expect(rest.recorded + rest.alreadyImported == total)

        // It equals a clean import of the file on a roomy disk, change for change.
        let clean = try Replica(key: key)
        defer { clean.dir.remove() }
        let once = try clean.store.runImport(text, chunk: 150)
        #expect(once.recorded == total)
        #expect(try reopened.stateDigest() == clean.store.stateDigest())
        #expect(try reopened.pending == clean.store.pending)
        #expect(try reopened.attemptsCountForTests("attempt") == 4 * 400)
        #expect(try reopened.changeLog() == clean.store.changeLog())
        #expect(try reopened.nationalReport().national == clean.store.nationalReport().national)
    }
}
