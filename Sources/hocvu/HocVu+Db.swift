import ArgumentParser
import Foundation
import Store

extension HocVu {
    struct Db: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "db", abstract: "The node's database file: check its integrity.", subcommands: [Check.self])
    }
}

extension HocVu.Db {
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "SQLite's full integrity check of a database (read-only: safe while the daemon runs; no keys needed).",
            discussion: """
                Run it weekly (a timer or cron) and before taking a backup you will rely on. Exit status: 0 sound; \
                2 damaged (each problem printed, then the restore steps); 1 the check could not run (no such file, \
                permission denied). The daemons run the faster quick_check every time they start.
                """)
        @Option(help: "The database.") var db = "/var/lib/hocvu/hocvu.sqlite"
        @Option(help: "site or hub: whose restore steps to print if the database is damaged.") var role: String?
        @Flag(help: "The faster quick_check (pages and records, not indexes), as the daemons do at start.") var quick = false

        func validate() throws {
            if let role, NodeRole(rawValue: role) == nil { throw ValidationError("--role must be site or hub") }
        }

        func run() throws {
            let started = Date()
            let problems: [String]
            do {
                problems = try NodeStore.integrityProblems(path: db, quick ? .quick : .full)
            } catch let e as StoreOpenError {
                throw Failure(explain(e, role: role.flatMap(NodeRole.init(rawValue:)), command: "db check", keys: "/etc/hocvu/keys"))
            }
            let seconds = String(format: "%.1f", Date().timeIntervalSince(started))
            guard !problems.isEmpty else {
                print("\(db): ok (\(quick ? "quick_check" : "integrity_check"), \(seconds) s)")
                return
            }
            for p in problems { FileHandle.standardError.write(Data("\(db): \(p)\n".utf8)) }
            let e = StoreOpenError.corrupt(path: db, problems: problems)
            throw failing(ExitStatus.invalidInput, explain(e, role: role.flatMap(NodeRole.init(rawValue:)), command: "db check", keys: "/etc/hocvu/keys"))
        }
    }
}
