import ArgumentParser
import Foundation
import Testing

@testable import hocvu_bench

/// `hocvu-bench`, the benchmarks' own executable: its options parse, nonsense is refused as a usage
/// error, and the merge benchmark really runs (at a size that takes well under a second).
@Suite("hocvu-bench")
struct BenchCommandTests {
    @Test("merge parses its options")
    func mergeOptions() throws {
        let command = try HocVuBench.parseAsRoot(["merge", "--changes", "5000", "--repetitions", "2"])
        let merge = try #require(command as? HocVuBench.Merge)
        #expect(merge.changes == 5_000 && merge.repetitions == 2)
    }

    @Test("every benchmark keeps its name")
    func names() throws {
        for name in ["merge", "ingest", "fleet", "release-edit", "fanout"] {
            #expect(throws: Never.self, "\(name)") { _ = try HocVuBench.parseAsRoot([name]) }
        }
        let fleet = try #require(try HocVuBench.parseAsRoot(["fleet", "--sites", "3", "--hocvu", "/x/hocvu"]) as? HocVuBench.Fleet)
        #expect(fleet.sites == 3 && fleet.hocvu == "/x/hocvu")
    }

    @Test("nonsense is refused with a message, not run")
    func refusesBadValues() {
        #expect(throws: (any Error).self) { try HocVuBench.parseAsRoot(["merge", "--changes", "1"]) }
        #expect(throws: (any Error).self) { try HocVuBench.parseAsRoot(["merge", "--repetitions", "0"]) }
        #expect(throws: (any Error).self) { try HocVuBench.parseAsRoot(["no-such-benchmark"]) }
    }

    @Test("a tiny merge benchmark runs: the store merges every change and the raw baseline inserts them")
    func tinyMerge() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hocvu-bench-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try MergeBenchmark(changes: 200, directory: dir, repetitions: 1).run { _ in }
        #expect(result.changes == 200)
        #expect(result.storeSeconds > 0 && result.rawSeconds > 0)
    }
}
