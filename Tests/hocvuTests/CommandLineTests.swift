import ArgumentParser
import Testing

@testable import hocvu

@Suite("Command line")
struct CommandLineTests {
    @Test("nonsense is refused with a message, not run")
    func refusesBadValues() {
        #expect(throws: (any Error).self) { try HocVu.parseAsRoot(["no-such-command"]) }
        #expect(throws: (any Error).self) { try HocVu.parseAsRoot(["db", "check", "--role", "relay"]) }
    }

    @Test("the benchmarks are not in the shipped binary (they are hocvu-bench's)")
    func noBench() {
        #expect(throws: (any Error).self) { try HocVu.parseAsRoot(["bench", "merge"]) }
    }

    @Test("db check and status parse their options")
    func operatorCommands() throws {
        let check = try #require(try HocVu.parseAsRoot(["db", "check", "--db", "/x.sqlite", "--quick", "--role", "hub"]) as? HocVu.Db.Check)
        #expect(check.db == "/x.sqlite" && check.quick && check.role == "hub")
        let status = try #require(try HocVu.parseAsRoot(["status", "--json", "--file", "/run/x.json"]) as? HocVu.Status)
        #expect(status.json && status.file == "/run/x.json")
    }

    @Test("a runtime failure is not a usage error: its exit status is 1, with the message alone")
    func failureIsNotUsage() {
        #expect(HocVu.exitCode(for: Failure("there is no database at /x")).rawValue == 1)
        #expect(HocVu.message(for: Failure("there is no database at /x")) == "there is no database at /x")
        #expect(HocVu.exitCode(for: ValidationError("--role must be site or hub")).rawValue == 64)
    }
}
