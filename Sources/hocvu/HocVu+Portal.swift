import ArgumentParser
import Foundation
import Sodium
import Store

extension HocVu.Site {
    /// `hocvu site user add|remove|list`: the portal's operator accounts (docs/portal.md).
    struct User: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Manage the learner portal's operator accounts (commune staff who register learners and set PINs).",
            subcommands: [Add.self, Remove.self, List.self])
    }

    /// `hocvu site app add|remove|list`: learning apps' API tokens.
    struct App: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue and withdraw API tokens for learning apps (docs/portal-api.md).",
            subcommands: [Add.self, Remove.self, List.self])
    }
}

extension HocVu.Site.User {
    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add an operator account. The password is read from --password-file or standard input, never from the command line.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "User name: 1 to 64 characters of a-z, 0-9, '.', '_' or '-'.") var name: String
        @Option(help: "File whose first line is the password (e.g. made with umask 077).") var passwordFile: String?

        func validate() throws {
            guard NodeStore.isValidDashboardUserName(name) else {
                throw ValidationError("user name \(name.debugDescription) is not allowed: 1 to 64 characters of a-z, 0-9, '.', '_' or '-'")
            }
        }

        func run() throws {
            let hash = try HocVu.Hub.User.passwordHash(file: passwordFile)
            let (db, _) = try store.open(.existing, role: .site, command: "site user add")
            do { try db.addPortalOperator(name: name, passwordHash: hash) } catch let e as PortalError { throw Failure("\(e)") }
            print("added portal operator \(name); a running portal accepts it at once")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove an operator account; its open sessions end at their next request.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "User name.") var name: String

        func run() throws {
            let (db, _) = try store.open(.existing, role: .site, command: "site user remove")
            do { try db.removePortalOperator(name: name) } catch let e as PortalError { throw Failure("\(e)") }
            print("removed portal operator \(name)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List operator accounts and whether they are locked.")
        @Option(help: "The site's SQLite database; opened read-only, no keys needed.") var db = "/var/lib/hocvu/hocvu.sqlite"

        func run() throws {
            let store = try openForReading(db: db, role: .site, command: "site user list")
            let now = NodeStore.systemNow()
            for u in try store.portalOperators() {
                print("\(u.name)\tcreated \(HocVu.Hub.User.vietnamTime(u.createdAt))" + (u.isLocked(now: now) ? "\tlocked until \(HocVu.Hub.User.vietnamTime(u.lockedUntil!))" : ""))
            }
        }
    }
}

extension HocVu.Site.App {
    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue an API token to a learning app; the token is printed once (only its hash is kept).")
        @OptionGroup var store: StoreOptions
        @Argument(help: "App name: 1 to 64 characters of a-z, 0-9, '.', '_' or '-'.") var name: String

        func run() throws {
            let (db, _) = try store.open(.existing, role: .site, command: "site app add")
            do { print(try db.addPortalApp(name: name)) } catch let e as PortalError { throw Failure("\(e)") }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Withdraw an app's token; its next request is refused (401).")
        @OptionGroup var store: StoreOptions
        @Argument(help: "App name.") var name: String

        func run() throws {
            let (db, _) = try store.open(.existing, role: .site, command: "site app remove")
            do { try db.removePortalApp(name: name) } catch let e as PortalError { throw Failure("\(e)") }
            print("withdrew the token of \(name)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List apps holding a token.")
        @Option(help: "The site's SQLite database; opened read-only, no keys needed.") var db = "/var/lib/hocvu/hocvu.sqlite"

        func run() throws {
            let store = try openForReading(db: db, role: .site, command: "site app list")
            for a in try store.portalApps() { print("\(a.name)\tissued \(HocVu.Hub.User.vietnamTime(a.createdAt))") }
        }
    }
}
