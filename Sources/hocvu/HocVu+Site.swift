import ArgumentParser
import Foundation
import Logging
import Node
import Merge
import Release
import Store

extension HocVu {
    struct Site: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a commune site and feed it learner events.", subcommands: [Run.self, Import.self, Courses.self])
    }
}

extension HocVu.Site {
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Sync with the hub until SIGTERM or SIGINT.")
        @OptionGroup var store: StoreOptions
        @Option(help: "The hub's endpoint, e.g. tcp://hub.example:7400.") var hub: String
        @Option(help: "The hub's transport public key (hex), pinned: no other server is trusted.") var hubKey: String
        @Option(help: "Trust file pinning the admin keys; without it the site takes no releases.") var trust: String?
        @Option(help: "Directory for release chunks.") var chunks = "/var/lib/hocvu/chunks"
        @Option(help: "Cap on release download speed in bytes per second (default: none).") var fetchRate: Int?

        func run() throws {
            let logger = HocVu.makeLogger("hocvu.site")
            let (db, keys) = try store.open()
            var config = SiteClient.Configuration(
                hubEndpoint: hub, hubTransportKey: try publicKey(hubKey, name: "--hub-key"), transportKeys: keys.transport)
            if let trust {
                config.trust = try loadTrust(trust)
                config.chunkDirectory = chunks
                config.fetchBytesPerSecond = fetchRate
            }
            let client = try SiteClient(store: db, configuration: config, logger: logger)
            try client.start()
            logger.info("Site syncing", metadata: ["hub": "\(hub)"])
            HocVu.waitForTermination()
            client.stop()
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record learner events from a JSON Lines file (docs/import-format.md); report bad lines.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The JSON Lines file.") var file: String

        func run() throws {
            let (db, _) = try store.open()
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ValidationError("cannot read \(file) as UTF-8 text")
            }
            let (recorded, errors) = try db.importEvents(text)
            for e in errors { FileHandle.standardError.write(Data("\(file): \(e)\n".utf8)) }
            print("\(recorded) events recorded, \(errors.count) lines refused")
            if !errors.isEmpty { throw ExitCode(2) }
        }
    }
}

extension HocVu.Site {
    struct Courses: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The installed release, the one being fetched, and the courses it offers a role in a commune.")
        @OptionGroup var store: StoreOptions
        @Option(help: "Directory for release chunks.") var chunks = "/var/lib/hocvu/chunks"
        @Option(help: "Learner role: \(Role.allCases.map(\.rawValue).joined(separator: ", ")).") var role: String
        @Option(help: "The learner's home commune code (for province targeting).") var commune: Int?

        func run() throws {
            guard let r = Role(rawValue: role) else {
                throw ValidationError("--role must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let (db, _) = try store.open()
            let library = ReleaseLibrary(store: db, chunks: try ChunkStore(directory: chunks))
            guard let m = try library.installed() else {
                print("No signed release installed yet.")
                return
            }
            print("Installed release \(m.version) (expires \(Date(timeIntervalSince1970: Double(m.expires))))")
            if let staged = try db.stagedRelease() { print("Fetching release \(staged.version)") }
            for c in try library.courses(role: r, commune: commune) {
                print("  \(c.id)  \(c.title)  (\(c.lessons.count) lessons, \(c.quizzes.count) quizzes)")
            }
        }
    }
}
