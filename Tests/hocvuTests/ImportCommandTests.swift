import Foundation
import Store
import TestSupport
import Testing

@testable import hocvu

/// `hocvu site import` as an operator runs it: the trail of committed transactions, re-runs that
/// skip, a `kill -9` half way, and a full disk (a real tmpfs, as root).
@Suite(.serialized) struct ImportCommandTests {
    static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        .appendingPathComponent("hocvu").path

    struct Run {
        let status: Int32
        let out: String
        let err: String

        /// The numbers of the final summary line.
        var recorded: Int? { number(before: " events recorded") }
        var alreadyImported: Int { number(before: " lines already imported") ?? 0 }
        /// Lines reported committed, summed over the "lines a–b committed: N recorded" trail.
        var acknowledged: Int {
            out.split(separator: "\n").filter { $0.hasPrefix("lines ") && $0.contains(" committed: ") }.reduce(0) { sum, line in
                let tail = line[line.range(of: " committed: ")!.upperBound...]
                return sum + Int(tail.prefix { $0.isNumber })!
            }
        }

        private func number(before marker: String) -> Int? {
            guard let summary = out.split(separator: "\n").last, let r = summary.range(of: marker) else { return nil }
            let head = summary[..<r.lowerBound]
            return Int(head.reversed().prefix { $0.isNumber }.reversed().map(String.init).joined())
        }
    }

    let dir: String

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("hocvu-import-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { "\(dir)/\(name)" }

    /// Runs hocvu to completion, its output in files.
    func hocvu(_ args: [String]) throws -> Run {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = args
        let id = UUID().uuidString.prefix(8)
        let outPath = file(".out-\(id)"), errPath = file(".err-\(id)")
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outPath); try? FileManager.default.removeItem(atPath: errPath) }
        p.standardOutput = FileHandle(forWritingAtPath: outPath)
        p.standardError = FileHandle(forWritingAtPath: errPath)
        try p.run()
        p.waitUntilExit()
        return Run(
            status: p.terminationStatus, out: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
            err: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }

    /// Keys, and a site database at `db` with the sample curriculum (as a site that took release 1).
    func site(db: String) throws -> NodeStore {
        if !FileManager.default.fileExists(atPath: file("keys/identity.key")) {
            let keygen = try hocvu(["keygen", "--dir", file("keys")])
            try #require(keygen.status == 0, "\(keygen.err)")
        }
        let store = try NodeStore(path: db, identity: try KeyFiles.load(from: file("keys")).identity)
        try store.installCurriculum(SampleCurriculum.make())
        return store
    }

    static func learners(_ n: Int, from first: Int = 0) -> String {
        (first..<(first + n)).map {
            #"{"type":"learner","national_id":"\#(String(format: "0017%08d", $0))","full_name":"Đỗ Văn Khánh","role":"civil_servant","unit":"UBND xã","home_commune":70}"#
        }.joined(separator: "\n") + "\n"
    }

    @Test func rerunSkipsWhatIsRecordedAndReReportsRefusals() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = file("site.sqlite")
        _ = try site(db: db)
        let nid = "001700000001"
        let text = Self.learners(3) + [
            #"{"type":"enroll","national_id":"\#(nid)","course":"ksn-101"}"#,
            #"{"type":"attempt","national_id":"\#(nid)","quiz":"ksn-101-quiz","answers":[0,1,2,3,0],"score":11,"max_score":10,"started_at":"2025-12-01T08:00:00Z","finished_at":"2025-12-01T08:10:00Z"}"#,
            "not json",
            #"{"type":"attempt","national_id":"\#(nid)","quiz":"ksn-101-quiz","answers":[0,1,2,3,0],"score":9,"max_score":10,"started_at":"2025-12-01T08:00:00Z","finished_at":"2025-12-01T08:10:00Z"}"#,
        ].joined(separator: "\n")
        try text.write(toFile: file("events.jsonl"), atomically: true, encoding: .utf8)
        let args = ["site", "import", "--db", db, "--keys", file("keys"), file("events.jsonl")]

        let first = try hocvu(args)
        #expect(first.status == 2)
        #expect(first.out == "lines 1–7 committed: 5 recorded, 2 refused\n5 events recorded, 2 lines refused\n")
        #expect(first.err.contains("events.jsonl: line 5: score") && first.err.contains("events.jsonl: line 6: not a JSON object"))

        let again = try hocvu(args)
        #expect(again.status == 2, "the refused lines are still refused")
        #expect(again.out == "0 events recorded, 5 lines already imported, skipped, 2 lines refused (1 on an earlier run; --retry-refused tries them again)\n")
        #expect(again.err.contains("line 5: score") && again.err.contains("(refused on an earlier run)"))
        #expect(!again.err.contains(nid), "never echoes a national ID")

        // The file grown (an export that was appended to): only the new lines.
        try (text + "\n" + Self.learners(2, from: 10))
            .write(toFile: file("events.jsonl"), atomically: true, encoding: .utf8)
        let grown = try hocvu(args)
        #expect(grown.recorded == 2 && grown.alreadyImported == 5)
    }

    @Test func killedImportIsCompletedByARerunWithoutDuplicates() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = file("site.sqlite")
        let store = try site(db: db)
        let total = 12_000
        try Self.learners(total).write(toFile: file("big.jsonl"), atomically: true, encoding: .utf8)
        let args = ["site", "import", "--db", db, "--keys", file("keys"), file("big.jsonl")]

        // kill -9 as soon as the first transaction is reported.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        try p.run()
        var printed = Data()
        while !String(decoding: printed, as: UTF8.self).contains(" committed: ") {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            printed += chunk
        }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        printed += pipe.fileHandleForReading.readDataToEndOfFile()
        let killed = Run(status: p.terminationStatus, out: String(decoding: printed, as: UTF8.self), err: "")
        let acknowledged = killed.acknowledged
        #expect(acknowledged > 0)

        // What was reported is on disk; at most the one transaction in flight at the kill is there unreported.
        let journaled = try store.importJournalCounts().recorded
        #expect(journaled >= acknowledged && journaled <= acknowledged + 500)

        let rerun = try hocvu(args)
        #expect(rerun.status == 0, "\(rerun.err)")
        #expect(rerun.alreadyImported == journaled)
        #expect(rerun.recorded.map { $0 + journaled } == total)
        #expect(try store.attemptsCountForTests("learner") == total)
        #expect(try store.importJournalCounts().recorded == total)
        let last = try hocvu(args)
        #expect(last.out == "0 events recorded, \(total) lines already imported, skipped, 0 lines refused\n")
    }

    @Test(.enabled(if: geteuid() == 0, "skipped: mounting a small tmpfs needs root (CI runs as root)"))
    func fullDiskIsNamedAndARerunCompletes() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let mountPoint = file("small")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=48m", "tmpfs", mountPoint]
        try mount.run()
        mount.waitUntilExit()
        try #require(mount.terminationStatus == 0, "could not mount a tmpfs (no CAP_SYS_ADMIN?)")
        defer {
            let umount = Process()
            umount.executableURL = URL(fileURLWithPath: "/bin/umount")
            umount.arguments = ["-l", mountPoint]
            try? umount.run()
            umount.waitUntilExit()
        }
        let db = mountPoint + "/site.sqlite"
        let store = try site(db: db)
        let total = 12_000
        try Self.learners(total).write(toFile: file("big.jsonl"), atomically: true, encoding: .utf8)
        let args = ["site", "import", "--db", db, "--keys", file("keys"), file("big.jsonl")]

        var st = statvfs()
        try #require(statvfs(mountPoint, &st) == 0)
        let free = Int(st.f_bavail) * Int(st.f_frsize)
        FileManager.default.createFile(atPath: mountPoint + "/filler", contents: Data(count: max(0, free - 512 * 1024)))

        let full = try hocvu(args)
        #expect(full.status == 1)
        #expect(full.err.contains("big.jsonl: disk full: cannot write \(db) ("), "\(full.err)")
        #expect(full.err.contains(" free on the filesystem holding \(mountPoint), by statvfs"))
        #expect(full.err.contains("were rolled back: none of them is recorded"))
        #expect(!full.err.contains("SQLite error 13"))
        #expect(try store.importJournalCounts().recorded == full.acknowledged, "acknowledged = committed")

        try FileManager.default.removeItem(atPath: mountPoint + "/filler")
        let rerun = try hocvu(args)
        #expect(rerun.status == 0, "\(rerun.err)")
        #expect(rerun.alreadyImported == full.acknowledged)
        #expect(rerun.recorded.map { $0 + full.acknowledged } == total)
        #expect(try store.attemptsCountForTests("learner") == total)
    }
}
