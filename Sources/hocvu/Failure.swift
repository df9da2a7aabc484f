import ArgumentParser
import Foundation

/// A runtime failure: the command was well formed but could not do its work (a missing database,
/// a key file others can read, a refused release). ArgumentParser prints it as `Error: <message>`,
/// alone, and exits 1 — unlike `ValidationError`, which is kept for real usage errors (a malformed
/// option value) and exits 64 after the usage text. It is the CLI's one runtime error type: a
/// message names what failed, which file, key or path, and what to do. Usage errors are thrown
/// from `validate()` where they can be, so they are found before any file is opened or created.
///
/// Exit statuses (docs/operations.md, "Status and troubleshooting"): 0 success; 1 failure (this);
/// 2 invalid input reported line by line (`config check`, `site import`); 3 daemon not running or
/// not responding (`hocvu status`); 4 status unknown (`hocvu status` cannot read what it needs);
/// 64 usage error.
struct Failure: Error, CustomStringConvertible {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// Prints `message` on stderr as ArgumentParser would (`Error: …`) and returns the exit status to
/// throw, for failures whose status is not 1.
func failing(_ status: Int32, _ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("Error: \(message)\n".utf8))
    return ExitCode(status)
}

/// Exit statuses beyond 0, 1 and 64.
enum ExitStatus {
    /// Input refused line by line (configuration errors, refused import lines).
    static let invalidInput: Int32 = 2
    /// LSB "program is not running": no daemon, or one that stopped refreshing its status.
    static let notRunning: Int32 = 3
    /// LSB "status is unknown": the status or configuration cannot be read.
    static let unknown: Int32 = 4
}
