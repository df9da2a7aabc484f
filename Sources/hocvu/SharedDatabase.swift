import ArgumentParser
import Config
import Foundation
import HubPostgres
import Logging
import Node

#if canImport(CDispatch)
import CDispatch  // Glibc's `struct stat` (see KeyFiles.swift)
#endif

/// Opening the hub's shared PostgreSQL database from `[store]` (docs/multi-hub.md).
enum SharedDatabase {
    /// The password file must be a regular file only its owner can read: it is the key to every
    /// site's results.
    static func password(_ path: String?) throws -> String? {
        guard let path else { return nil }
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw Failure("[store] password_file \(path) cannot be read (\(String(cString: strerror(errno)))): create it, mode 0600, owned by the hocvu user")
        }
        guard st.st_mode & 0o077 == 0 else {
            throw Failure(
                "[store] password_file \(path) is readable by others (mode \(String(st.st_mode & 0o777, radix: 8))): run `chmod 600 \(path)`")
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw Failure("[store] password_file \(path) cannot be read as text: check its owner (the hocvu user) and contents")
        }
        let password = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !password.isEmpty else { throw Failure("[store] password_file \(path) is empty") }
        return password
    }

    /// The shared log for `[store]`, its schema checked without blocking a thread (the daemon's start).
    static func openChecked(_ c: StoreConfig, logger: Logger) async throws -> PostgresHubLog {
        let log = try open(c, logger: logger, checkSchema: false)
        do { try await log.checkSchemaAsync() } catch {
            log.close()
            throw Failure("\(error)")
        }
        return log
    }

    /// The shared log for `[store]`, its schema checked unless `checkSchema` is false (migrate).
    /// Blocks while checking: for the synchronous commands (enroll, revoke).
    static func open(_ c: StoreConfig, logger: Logger, checkSchema: Bool = true) throws -> PostgresHubLog {
        let settings = PostgresHubLog.Settings(
            host: c.host, port: c.port, database: c.database, user: c.user, password: try password(c.passwordFile),
            poolSize: c.poolSize, tls: c.tls, timeoutSeconds: Double(c.timeoutSeconds),
            hubName: c.name ?? ProcessInfo.processInfo.hostName)
        let log = PostgresHubLog(settings, logger: logger)
        if checkSchema {
            do { try log.checkSchema() } catch {
                log.close()
                throw Failure("\(error)")
            }
        }
        return log
    }

    /// The hub configuration named by `--config`, when it is one on PostgreSQL.
    static func configured(_ config: String?) throws -> HubConfig? {
        guard let config, case .hub(let c) = try readConfig(config, as: "hub"), c.store.backend == .postgresql else { return nil }
        return c
    }
}

extension HocVu.Hub {
    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or upgrade the hub's PostgreSQL schema ([store] backend = \"postgresql\").",
            discussion: "Safe to run on every hub at once and again: it takes a lock and applies only what is missing.")
        @Option(help: "The hub's configuration (hub.toml) with its [store] section.") var config: String

        func run() async throws {
            guard let c = try SharedDatabase.configured(config) else {
                throw Failure("\(config): [store] backend is not \"postgresql\"; a SQLite hub migrates its database by itself at start")
            }
            let logger = HocVu.makeLogger("hocvu.migrate", level: .warning)
            let log = try SharedDatabase.open(c.store, logger: logger, checkSchema: false)
            defer { log.close() }
            let applied: [Int]
            do { applied = try await log.migrateAsync() } catch { throw Failure("migrating \(c.store.host):\(c.store.port)/\(c.store.database): \(PostgresHubLog.describe(error))") }
            print(
                applied.isEmpty
                    ? "schema already at version \(PostgresHubLog.schemaVersion); nothing to do"
                    : "schema at version \(PostgresHubLog.schemaVersion) (applied \(applied.map(String.init).joined(separator: ", ")))")
        }
    }
}
