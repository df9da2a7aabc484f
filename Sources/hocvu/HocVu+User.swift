import ArgumentParser
import Foundation
import Sodium
import Store
#if canImport(Glibc)
import Glibc
#endif

extension HocVu.Hub {
    /// `hocvu hub user add|remove|list|audit`: the web dashboard's accounts (docs/operations.md, "Dashboard").
    struct User: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Manage the web dashboard's accounts and read its audit trail.",
            subcommands: [Add.self, Remove.self, List.self, Audit.self])
    }
}

extension HocVu.Hub.User {
    /// Shortest password accepted: the lockout slows guessing online, but a stolen database can be
    /// attacked offline, where only length (and Argon2id's cost) helps.
    static let minimumPasswordLength = 12

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a dashboard account. The password is read from --password-file or standard input, never from the command line.",
            discussion: "Scopes: national (every page) or province:CODE (that province's pages and downloads only).")
        @OptionGroup var store: StoreOptions
        @Argument(help: "User name: 1 to 64 characters of a-z, 0-9, '.', '_' or '-'.") var name: String
        @Option(help: "national or province:CODE.") var scope: String
        @Option(help: "File whose first line is the password (e.g. made with umask 077).") var passwordFile: String?

        func validate() throws {
            guard NodeStore.isValidDashboardUserName(name) else {
                throw ValidationError("user name \(name.debugDescription) is not allowed: 1 to 64 characters of a-z, 0-9, '.', '_' or '-'")
            }
            guard DashboardScope(scope) != nil else { throw ValidationError("--scope must be national or province:CODE, not \(scope)") }
        }

        func run() throws {
            let hash = try passwordHash(file: passwordFile)
            let (db, _) = try store.open(.existing, role: .hub, command: "hub user add")
            do {
                try db.addDashboardUser(name: name, passwordHash: hash, scope: DashboardScope(scope)!)
            } catch let e as DashboardAccountError { throw Failure("\(e)") }
            print("added dashboard user \(name) (\(scope)); a running dashboard accepts it at once")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a dashboard account; its open sessions end at their next request.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "User name.") var name: String

        func run() throws {
            let (db, _) = try store.open(.existing, role: .hub, command: "hub user remove")
            do { try db.removeDashboardUser(name: name) } catch let e as DashboardAccountError { throw Failure("\(e)") }
            print("removed dashboard user \(name)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List dashboard accounts, their scope and whether they are locked.")
        @Option(help: "The hub's SQLite database; opened read-only, no keys needed.") var db = "/var/lib/hocvu/hocvu.sqlite"

        func run() throws {
            let store = try openForReading(db: db, role: .hub, command: "hub user list")
            let now = NodeStore.systemNow()
            for u in try store.dashboardUsers() {
                let locked = LockoutPolicy().isLocked(u, now: now) ? "\tlocked until \(vietnamTime(u.lockedUntil!))" : ""
                print("\(u.name)\t\(u.scope)\tcreated \(vietnamTime(u.createdAt))\(locked)")
            }
        }
    }

    struct Audit: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The dashboard's audit trail, newest first: sign-ins, refusals, lockouts, and who opened pages with personal data.")
        @Option(help: "The hub's SQLite database; opened read-only, no keys needed.") var db = "/var/lib/hocvu/hocvu.sqlite"
        @Option(help: "How many entries (1 to 100000).") var limit = 100

        func validate() throws {
            guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 100000") }
        }

        func run() throws {
            let store = try openForReading(db: db, role: .hub, command: "hub user audit")
            for e in try store.dashboardAudit(limit: limit) {
                print("\(vietnamTime(e.at))\t\(e.user)\t\(e.action.rawValue)\t\(e.target)")
            }
        }
    }

    static func vietnamTime(_ ms: Int64) -> String {
        let f = ISO8601DateFormatter()
        f.timeZone = TimeZone(identifier: "Asia/Ho_Chi_Minh") ?? TimeZone(secondsFromGMT: 7 * 3_600)!
        return f.string(from: Date(timeIntervalSince1970: Double(ms) / 1_000))
    }

    /// Reads a new account's password (``readPassword(file:)``), checks its length and hashes it
    /// (Argon2id): the dashboard's and the portal's operator accounts follow one rule.
    static func passwordHash(file: String?) throws -> String {
        let password = try readPassword(file: file)
        guard password.count >= minimumPasswordLength else {
            throw Failure("the password has \(password.count) characters; use at least \(minimumPasswordLength)")
        }
        guard password.utf8.count <= PasswordHash.maxPasswordBytes else {
            throw Failure("the password is longer than \(PasswordHash.maxPasswordBytes) bytes")
        }
        guard let hash = PasswordHash.hash(password) else { throw Failure("libsodium could not hash the password (out of memory?)") }
        return hash
    }

    /// The first line of `file`, or of standard input (without echo when it is a terminal).
    static func readPassword(file: String?) throws -> String {
        if let file {
            guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
                throw Failure("cannot read the password file \(file) as UTF-8 text")
            }
            return String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
                .trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
        }
        let terminal = isatty(STDIN_FILENO) == 1
        var saved = termios()
        if terminal {
            FileHandle.standardError.write(Data("Password: ".utf8))
            tcgetattr(STDIN_FILENO, &saved)
            var quiet = saved
            quiet.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(STDIN_FILENO, TCSANOW, &quiet)
        }
        defer {
            if terminal {
                tcsetattr(STDIN_FILENO, TCSANOW, &saved)
                FileHandle.standardError.write(Data("\n".utf8))
            }
        }
        guard let line = readLine(strippingNewline: true) else { throw Failure("no password on standard input (or use --password-file)") }
        return line
    }
}
