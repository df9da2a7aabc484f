import ArgumentParser
import Foundation
import Store
#if canImport(CDispatch)
// Glibc's `struct stat` is owned by CDispatch once swift-nio and UnixSignals are linked in; with
// MemberImportVisibility a release (whole-module) build then needs that module imported here.
import CDispatch
#endif

/// `--db` and `--keys` for the commands that work on a node's database.
struct StoreOptions: ParsableArguments {
    @Option(help: "The node's SQLite database (it must exist: the daemon's first start creates it).")
    var db = "/var/lib/hocvu/hocvu.sqlite"

    @Option(help: "Directory holding identity.key and transport.key.")
    var keys = "/etc/hocvu/keys"

    /// Opens an existing database for writing (`site import`, `site restored`); a missing one is
    /// refused, never created.
    func open() throws -> (NodeStore, KeyFiles) { try open(.existing, role: .site, command: "site import") }

    func open(_ access: NodeStore.Access, role: NodeRole, command: String) throws -> (NodeStore, KeyFiles) {
        try openStore(db: db, keys: keys, access: access, role: role, command: command)
    }
}

/// Which daemon owns a database, for messages that name the right service.
enum NodeRole: String {
    case site, hub

    var service: String { "hocvu-\(rawValue)" }
    var config: String { "/etc/hocvu/\(rawValue).toml" }
}

/// Which commands create a database (docs/operations.md, "Daily work"): the daemons' first start,
/// and at the hub the first `hocvu hub enroll`. Every other command refuses a missing one, so a
/// mistyped `--db` never yields an empty report or learners' records in a file that never syncs.
func openStore(
    db: String, keys: String, access: NodeStore.Access, role: NodeRole, command: String,
    check: NodeStore.IntegrityCheck = .none
) throws -> (NodeStore, KeyFiles) {
    let k = try KeyFiles.load(from: keys)
    let existed = FileManager.default.fileExists(atPath: db)
    let store: NodeStore
    do {
        store = try NodeStore(path: db, identity: k.identity, access: access, check: check)
    } catch let e as StoreOpenError {
        throw Failure(explain(e, role: role, command: command, keys: keys))
    } catch let e as StoreError {
        throw Failure("\(db): \(e)")
    }
    if !existed, access == .create { handOver(db) }
    return (store, k)
}

/// Opens an existing database read-only for reports: no keys needed (a report reads counts, it
/// signs nothing), a missing database refused with the same operator message as elsewhere.
func openForReading(db: String, role: NodeRole, command: String) throws -> NodeStore {
    do {
        return try NodeStore(readingAt: db)
    } catch let e as StoreOpenError {
        throw Failure(explain(e, role: role, command: command, keys: nil))
    } catch let e as StoreError {
        throw Failure("\(db): \(e)")
    }
}

/// A database created by root in a directory owned by the service user (`sudo hocvu hub enroll`
/// before the hub's first start) is given to that user, or the daemon could not write it.
func handOver(_ db: String) {
    guard geteuid() == 0 else { return }
    let dir = (db as NSString).deletingLastPathComponent
    var st = stat()
    guard stat(dir.isEmpty ? "." : dir, &st) == 0, st.st_uid != 0 else { return }
    for path in [db, db + "-wal", db + "-shm"] where FileManager.default.fileExists(atPath: path) {
        _ = chown(path, st.st_uid, st.st_gid)
    }
}

/// What went wrong and what to do, naming this node's service and files.
func explain(_ e: StoreOpenError, role: NodeRole?, command: String, keys: String?) -> String {
    let keys = keys ?? "/etc/hocvu/keys"
    let service = role?.service ?? "hocvu-site (or hocvu-hub)"
    switch e {
    case .missing(let path):
        let creator = role == nil
            ? "a node's database is created by its daemon's first start (`systemctl start hocvu-site` or `hocvu-hub`)"
            : role == .hub
            ? "the hub's database is created by its first start (`systemctl start hocvu-hub`, or `hocvu hub run`) or by the first `hocvu hub enroll`"
            : "a site's database is created by the site daemon's first start (`systemctl start hocvu-site`, or `hocvu site run`)"
        return "there is no database at \(path). `hocvu \(command)` does not create one; \(creator). "
            + "Check --db (the daemon's is [node] database in \(role?.config ?? "/etc/hocvu/site.toml or hub.toml"))."
    case .corrupt(let path, _):
        return "\(e). hocvu does not run on a damaged database. Restore it (docs/operations.md, \"Backup and restore\"): "
            + "1. systemctl stop \(service); "
            + "2. mv \(path) \(path).damaged (keep it; also move any \(path)-wal and \(path)-shm with it); "
            + "3. copy the latest backup to \(path) and chown hocvu:hocvu \(path); "
            + "4. systemctl start \(service)"
            + (role == .hub
                ? " (sites upload again their results the backup lacks)."
                : (role == nil ? " (a site" : " (the site") + " sees at its first contact with the hub that it was restored and "
                    + "re-sends what the hub lacks; with no hub in reach, first run sudo -u hocvu hocvu site restored --db \(path) --keys \(keys)).")
            + " To see every problem: hocvu db check --db \(path)"
    case .schemaOutdated:
        return "\(e). `hocvu \(command)` only reads, so it does not upgrade the database: start the daemon once "
            + "(`systemctl restart \(service)`; it migrates on start), then run this again."
    case .notInitialized(let path):
        return "\(e). It is initialised by the daemon's first start (`systemctl start \(service)`); "
            + "check --db (\(path))."
    case .busy:
        return "\(e). Another hocvu command or the daemon is writing; try again in a moment."
    case .permissionDenied, .unusable:
        return "\(e)"
    }
}
