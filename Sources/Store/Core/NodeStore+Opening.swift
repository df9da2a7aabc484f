public import Foundation
import GRDB

extension NodeStore {
    /// What opening a store may do to the file (docs/operations.md, "Daily work").
    public enum Access: Sendable, Equatable {
        /// Create the database when it is missing, migrate it, repair its clock: the daemons' start
        /// (and the hub's first enrollment).
        case create
        /// Write to a database that must already exist (migrated and repaired like `create`): a
        /// mistyped path is refused instead of becoming a new, empty database.
        case existing
        /// Read only (SQLite's read-only open): no migration, no repair, no write lock — works
        /// while another process writes, on a full disk, and on a file this user may only read.
        /// A schema older than this binary is refused (the daemon migrates it when it starts).
        case readOnly
    }

    /// How much of the file to check before using it.
    public enum IntegrityCheck: Sendable, Equatable {
        case none
        /// `PRAGMA quick_check`: every page and record is well-formed (the daemons' start).
        case quick
        /// `PRAGMA integrity_check`: also every index against its table (`hocvu db check`).
        case full
    }

    /// Problems found by SQLite's integrity check of this database (empty when it is sound).
    public func integrityProblems(_ check: IntegrityCheck = .full) throws -> [String] {
        try pool.read { db in try Self.integrityProblems(db, check) }
    }

    /// Frees SQLite's page caches without waiting: idle reader connections close (the next read
    /// opens one again) and the writer empties its cache once it is free. A daemon calls it after
    /// the start-up check — which read every page into one reader's cache of up to 64 MiB — and,
    /// at a site, from time to time while idle.
    public func releaseMemory() { pool.releaseMemoryEventually() }

    /// Checks the file at `path` without the node's keys: opens it read-only (it must exist) and
    /// runs the check. A file SQLite cannot even read as a database is reported as one problem.
    /// - Throws: ``StoreOpenError`` when the file is missing or this user may not read it.
    public static func integrityProblems(path: String, _ check: IntegrityCheck = .full) throws -> [String] {
        try preflight(path, access: .readOnly)
        var config = Configuration()
        config.readonly = true
        do {
            let pool = try openPool(path: path, configuration: config)
            return try pool.read { db in try integrityProblems(db, check) }
        } catch let e as DatabaseError where e.resultCode == .SQLITE_CORRUPT || e.resultCode == .SQLITE_NOTADB {
            return ["\(e.message ?? "database disk image is malformed") (SQLite error \(e.resultCode.rawValue))"]
        } catch {
            throw openFailure(error, path: path, access: .readOnly)
        }
    }

    static func integrityProblems(_ db: Database, _ check: IntegrityCheck) throws -> [String] {
        let pragma: String
        switch check {
        case .none: return []
        case .quick: pragma = "quick_check(20)"
        case .full: pragma = "integrity_check(100)"
        }
        let rows = try String.fetchAll(db, sql: "PRAGMA \(pragma)")
        return rows == ["ok"] ? [] : rows
    }

    /// Opens the pool. Read-only, a WAL database whose `-shm` file does not exist and cannot be
    /// created (a directory this user may not write or a full disk, the daemon stopped) cannot be
    /// opened the usual way; with no `-wal` file either, no connection is writing it, so it is read as
    /// immutable (SQLite then takes no locks and needs no `-shm`).
    static func openPool(path: String, configuration: Configuration) throws -> DatabasePool {
        do {
            let pool = try DatabasePool(path: path, configuration: configuration)
            if configuration.readonly { _ = try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") } }
            return pool
        } catch let e as DatabaseError
            where configuration.readonly
            && [.SQLITE_READONLY, .SQLITE_CANTOPEN, .SQLITE_FULL, .SQLITE_IOERR].contains(e.resultCode.primaryResultCode)
            && !FileManager.default.fileExists(atPath: path + "-wal")
        {
            var uri = URLComponents()
            uri.scheme = "file"
            uri.path = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
            uri.queryItems = [URLQueryItem(name: "immutable", value: "1")]
            guard let immutable = uri.string else { throw e }
            let pool = try DatabasePool(path: immutable, configuration: configuration)
            _ = try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") }
            return pool
        }
    }

    /// Refuses what SQLite would either do silently (create a missing file) or report obscurely
    /// (permission denied as "unable to open database file").
    static func preflight(_ path: String, access: Access) throws {
        var st = stat()
        if stat(path, &st) != 0 {
            let code = errno
            if code == ENOENT {
                guard access == .create else { throw StoreOpenError.missing(path: path) }
                let dir = (path as NSString).deletingLastPathComponent
                let parent = dir.isEmpty ? "." : dir
                var dirStat = stat()
                if stat(parent, &dirStat) == 0, Foundation.access(parent, W_OK | X_OK) != 0, errno == EACCES {
                    throw StoreOpenError.permissionDenied(
                        path: parent, owner: FileOwner(dirStat), user: FileOwner.currentUser, wanted: "create files in")
                }
                return
            }
            if code == EACCES {
                throw StoreOpenError.permissionDenied(
                    path: path, owner: nearestOwner(of: path), user: FileOwner.currentUser, wanted: "reach")
            }
            throw StoreOpenError.unusable(path: path, reason: String(cString: strerror(code)))
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw StoreOpenError.unusable(path: path, reason: "not a regular file")
        }
        let write = access != .readOnly
        if Foundation.access(path, write ? (R_OK | W_OK) : R_OK) != 0, errno == EACCES {
            throw StoreOpenError.permissionDenied(
                path: path, owner: FileOwner(st), user: FileOwner.currentUser, wanted: write ? "write" : "read")
        }
        guard write else { return }
        // WAL needs its -wal and -shm files writable too (created next to the database).
        for suffix in ["-wal", "-shm"] {
            var side = stat()
            if stat(path + suffix, &side) == 0, Foundation.access(path + suffix, R_OK | W_OK) != 0, errno == EACCES {
                throw StoreOpenError.permissionDenied(
                    path: path + suffix, owner: FileOwner(side), user: FileOwner.currentUser, wanted: "write")
            }
        }
        let dir = (path as NSString).deletingLastPathComponent
        var dirStat = stat()
        let parent = dir.isEmpty ? "." : dir
        if stat(parent, &dirStat) == 0, Foundation.access(parent, W_OK | X_OK) != 0, errno == EACCES {
            throw StoreOpenError.permissionDenied(
                path: parent, owner: FileOwner(dirStat), user: FileOwner.currentUser, wanted: "create files in")
        }
    }

    /// The owner of the nearest ancestor of `path` this user can see (for "run it as …").
    static func nearestOwner(of path: String) -> FileOwner? {
        var dir = (path as NSString).deletingLastPathComponent
        while !dir.isEmpty {
            var st = stat()
            if stat(dir, &st) == 0 { return FileOwner(st) }
            if dir == "/" { break }
            dir = (dir as NSString).deletingLastPathComponent
        }
        return nil
    }

    /// Turns what SQLite and GRDB throw while opening into something an operator can act on.
    static func openFailure(_ error: any Error, path: String, access: Access) -> any Error {
        guard let e = error as? DatabaseError else { return error }
        let detail = e.message ?? "SQLite error \(e.resultCode.rawValue)"
        switch e.resultCode.primaryResultCode {
        case .SQLITE_CORRUPT, .SQLITE_NOTADB:
            return StoreOpenError.corrupt(path: path, problems: [detail])
        case .SQLITE_READONLY:
            return StoreOpenError.unusable(
                path: path, reason: "\(detail): the file, its -wal/-shm files or their directory cannot be written by "
                    + "\(FileOwner.currentUser.name) (or the file system is mounted read-only)")
        case .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_AUTH:
            return StoreOpenError.unusable(path: path, reason: detail)
        case .SQLITE_FULL:
            return StoreOpenError.unusable(path: path, reason: "the disk is full (\(detail)); free space and try again")
        case .SQLITE_IOERR:
            return StoreOpenError.unusable(path: path, reason: "I/O error (\(detail)): check the disk (dmesg)")
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return StoreOpenError.busy(path: path)
        default:
            return error
        }
    }
}

/// A file's owner and mode, for messages that tell the operator which user to run as.
public struct FileOwner: Sendable, Equatable, CustomStringConvertible {
    public var uid: UInt32
    public var name: String
    public var group: String
    public var mode: UInt32

    public init(uid: UInt32, name: String, group: String, mode: UInt32) {
        self.uid = uid; self.name = name; self.group = group; self.mode = mode
    }

    init(_ st: stat) {
        uid = st.st_uid
        name = Self.userName(st.st_uid)
        group = getgrgid(st.st_gid).map { String(cString: $0.pointee.gr_name) } ?? "\(st.st_gid)"
        mode = UInt32(st.st_mode) & 0o7777
    }

    /// The owner, group and mode of `path` (nil when it cannot be seen).
    public static func of(_ path: String) -> FileOwner? {
        var st = stat()
        return stat(path, &st) == 0 ? FileOwner(st) : nil
    }

    static func userName(_ uid: uid_t) -> String { getpwuid(uid).map { String(cString: $0.pointee.pw_name) } ?? "\(uid)" }

    /// The user this process runs as (mode and group are not meaningful here).
    public static var currentUser: FileOwner {
        FileOwner(uid: geteuid(), name: userName(geteuid()), group: "", mode: 0)
    }

    public var octalMode: String { "0" + String(mode, radix: 8) }
    public var description: String { "owner \(name):\(group), mode \(octalMode)" }
}

/// Why a database could not be opened, in the operator's terms.
public enum StoreOpenError: Error, Equatable, CustomStringConvertible {
    /// Nothing at `path`, and this command does not create databases.
    case missing(path: String)
    /// This user may not `wanted` (read, write, reach, create files in) `path`.
    case permissionDenied(path: String, owner: FileOwner?, user: FileOwner, wanted: String)
    /// SQLite's integrity check failed, or SQLite says the file is not a sound database.
    case corrupt(path: String, problems: [String])
    /// Opened read-only, the database lacks migrations this binary has (an older hocvu wrote it).
    case schemaOutdated(path: String, pending: [String])
    /// Opened read-only, the database was never initialised by a hocvu daemon.
    case notInitialized(path: String)
    /// Another process held the write lock longer than the busy timeout.
    case busy(path: String)
    /// Anything else the file system or SQLite refused, with its reason.
    case unusable(path: String, reason: String)

    public var path: String {
        switch self {
        case .missing(let p), .permissionDenied(let p, _, _, _), .corrupt(let p, _), .schemaOutdated(let p, _),
            .notInitialized(let p), .busy(let p), .unusable(let p, _):
            p
        }
    }

    public var description: String {
        switch self {
        case .missing(let path):
            "there is no database at \(path)"
        case .permissionDenied(let path, let owner, let user, let wanted):
            "permission denied: \(user.name) may not \(wanted) \(path)"
                + (owner.map { " (\($0)); run the command as \($0.name == user.name ? "a user allowed to" : $0.name), e.g. sudo -u \($0.name) hocvu …" } ?? "")
        case .corrupt(let path, let problems):
            "the database \(path) is damaged: \(problems.prefix(5).joined(separator: "; "))"
                + (problems.count > 5 ? " (and \(problems.count - 5) more)" : "")
        case .schemaOutdated(let path, let pending):
            "the database \(path) was written by an older hocvu (schema changes not yet applied: "
                + "\(pending.joined(separator: ", "))); opened read-only it is not migrated"
        case .notInitialized(let path):
            "\(path) is not a hocvu database yet (no node in it)"
        case .busy(let path):
            "\(path) is locked by another process writing to it (waited 5 s)"
        case .unusable(let path, let reason):
            "cannot use the database \(path): \(reason)"
        }
    }
}
