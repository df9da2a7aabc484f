import ArgumentParser
import Logging

/// `hocvu`: one executable for every role — site and hub daemons, keys, enrollment, releases,
/// status and reports. The benchmarks are a separate executable, `hocvu-bench`, never shipped.
@main
struct HocVu: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "hocvu",
        abstract: "Offline-first sync of the \"Bình dân học vụ số\" curriculum and learner results.",
        discussion: """
            A site daemon at each commune office keeps the curriculum and its learners' results in SQLite and
            replicates with the national hub. See README.md and docs/ for the whole picture.
            """,
        version: version,
        subcommands: [Keygen.self, Hub.self, Site.self, Admin.self, ConfigCommand.self, Status.self, Db.self])

    /// The entry point: the heap's settings first, while this is the only thread, then the command.
    static func main() async {
        ProcessMemory.limitArenas()
        await main(nil)
    }
}

extension HocVu {
    /// Logs go to stderr, where journald collects them under systemd: with sd-daemon priority
    /// prefixes and no timestamp there, with timestamps on a terminal (``HocVuLogHandler``).
    static func makeLogger(_ label: String, level: Logger.Level = .info) -> Logger {
        var logger = Logger(label: label) { HocVuLogHandler(label: $0) }
        logger.logLevel = level
        return logger
    }
}
