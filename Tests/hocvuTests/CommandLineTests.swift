import ArgumentParser
import Testing

@testable import hocvu

@Suite("Command line")
struct CommandLineTests {
    @Test("bench merge parses its options")
    func benchMerge() throws {
        let command = try HocVu.parseAsRoot(["bench", "merge", "--changes", "5000", "--repetitions", "2"])
        let merge = try #require(command as? HocVu.Bench.Merge)
        #expect(merge.changes == 5_000 && merge.repetitions == 2)
    }

    @Test("nonsense is refused with a message, not run")
    func refusesBadValues() {
        #expect(throws: (any Error).self) { try HocVu.parseAsRoot(["bench", "merge", "--changes", "1"]) }
        #expect(throws: (any Error).self) { try HocVu.parseAsRoot(["bench", "merge", "--repetitions", "0"]) }
        #expect(throws: (any Error).self) { try HocVu.parseAsRoot(["no-such-command"]) }
    }
}
