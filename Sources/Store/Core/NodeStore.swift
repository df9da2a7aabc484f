import CSQLite
import Foundation
public import Merge
import Model
public import Sodium
import GRDB
import Synchronization

/// A node's SQLite database: curriculum, learner records, the change log, and the merge rules.
///
/// Every local write and its change-log entry commit in one transaction with
/// `synchronous=FULL`, so an acknowledged write survives a power cut and sync always sees it.
///
/// ```swift
/// let store = try NodeStore(path: "/var/lib/hocvu/site.sqlite", identity: key)
/// let ids = try store.record([.registerLearner(...)])
/// try store.sealPending()
/// let batches = try store.batches(after: peerVector)
/// let report = try other.apply(batches)
/// ```
///
/// `NodeStore` is `Sendable`: GRDB's `DatabasePool` serializes writes, and the curriculum index is
/// behind a `Mutex`.
public final class NodeStore: Sendable {
    /// Milliseconds since the Unix epoch from the system clock.
    public static let systemNow: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }

    public let path: String
    public let node: NodeID
    let identity: SigningKeyPair
    let pool: DatabasePool
    let systemClock: @Sendable () -> Int64
    /// Hub clock minus this machine's, adopted from the hub (see ``adoptClockOffset(_:)``).
    let offset = Atomic<Int64>(0)
    let index: Mutex<CurriculumIndex>

    /// Process-wide SQLite settings, once, before the first connection opens: no memory statistics,
    /// so allocations take no global mutex (`CSQLite_disableMemoryStatistics`).
    private static let configureSQLite: Void = { _ = CSQLite_disableMemoryStatistics() }()

    /// This node's clock: the system clock corrected by the offset adopted from the hub, so a
    /// commune PC whose clock is wrong still stamps results with the right time.
    public func now() -> Int64 {
        // Both terms are bounded (see adoptClockOffset), but a clock is never worth a trap.
        let (sum, overflow) = systemClock().addingReportingOverflow(offset.load(ordering: .relaxed))
        return overflow ? systemClock() : sum
    }

    /// Opens an existing database read-only, without the node's keys: for reports and the
    /// dashboard's command-line twin. It can read everything and sign nothing (a throwaway key
    /// stands in; SQLite refuses every write on a read-only connection).
    public convenience init(readingAt path: String) throws {
        try self.init(path: path, identity: SigningKeyPair.generate(), access: .readOnly, keyless: true)
    }

    /// Opens the database at `path` for the node whose identity key is `identity`.
    ///
    /// `access` says what opening may do: ``Access/create`` (the default) creates and migrates;
    /// ``Access/existing`` refuses a missing file; ``Access/readOnly`` never writes (no migration,
    /// no clock repair, no write lock). Opening for writing commits a transaction of its own only
    /// when there is something to do (a migration, a repair, a new database). `check` runs SQLite's
    /// integrity check before anything else touches the data.
    ///
    /// - Throws: ``StoreOpenError`` for a missing, unreadable, damaged, locked or (read-only)
    ///   outdated database; ``StoreError/wrongIdentity(databaseNode:keyNode:)`` when the database
    ///   was created by another node.
    public convenience init(
        path: String, identity: SigningKeyPair, access: Access = .create, check: IntegrityCheck = .none,
        now: @escaping @Sendable () -> Int64 = NodeStore.systemNow
    ) throws {
        try self.init(path: path, identity: identity, access: access, check: check, now: now, keyless: false)
    }

    /// `keyless`: read-only without the node's key (``init(readingAt:)``), so the database's own
    /// identity is not compared with the throwaway one.
    private init(
        path: String, identity: SigningKeyPair, access: Access = .create, check: IntegrityCheck = .none,
        now: @escaping @Sendable () -> Int64 = NodeStore.systemNow, keyless: Bool
    ) throws {
        precondition(!keyless || access == .readOnly, "a store without its key may only read")
        try Self.preflight(path, access: access)
        Self.configureSQLite
        var config = Configuration()
        config.foreignKeysEnabled = true
        config.readonly = access == .readOnly
        config.prepareDatabase { db in
            // FULL: WAL commits are fsynced before we acknowledge anyone (see DESIGN: storage).
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // Merge transactions touch many pages; a 64 MiB cache keeps them from spilling to the
            // WAL mid-transaction (the default is about 2 MiB).
            try db.execute(sql: "PRAGMA cache_size = -65536")
        }
        config.busyMode = .timeout(5)
        /// Every SQLite failure below, in the operator's terms (a damaged file, a full disk, a lock).
        func opening<T>(_ body: () throws -> T) throws -> T {
            do { return try body() } catch { throw Self.openFailure(error, path: path, access: access) }
        }
        let pool = try opening { try Self.openPool(path: path, configuration: config) }
        if access != .readOnly {
            // GRDB's WAL set-up runs after prepareDatabase and sets the writer to NORMAL, which may
            // lose the last commits on a power cut: FULL again, before anything is written.
            try opening { try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") } }
        }
        if check != .none {
            let problems = try opening { try pool.read { db in try Self.integrityProblems(db, check) } }
            guard problems.isEmpty else { throw StoreOpenError.corrupt(path: path, problems: problems) }
        }
        self.pool = pool
        self.path = path
        self.identity = identity
        self.node = NodeID(bytes: identity.publicKey)!
        self.systemClock = now
        self.index = Mutex(CurriculumIndex())
        let node = self.node
        let nowFromSystem = now
        // What is there, read without taking the write lock.
        let migrator = Self.migrator
        let (applied, migrated) = try opening {
            try pool.read { db in (try migrator.appliedIdentifiers(db), try migrator.hasCompletedMigrations(db)) }
        }
        if access == .readOnly {
            guard !applied.isEmpty else { throw StoreOpenError.notInitialized(path: path) }
            guard migrated else {
                let pending = migrator.migrations.filter { !applied.contains($0) }
                throw StoreOpenError.schemaOutdated(path: path, pending: pending)
            }
        }
        if !migrated { try opening { try migrator.migrate(pool) } }
        let found = try opening { try pool.read { db in try OpenState(db) } }
        var repairs: [String] = []
        var adopted: Int64 = Self.isAdoptableOffset(found.storedOffset, systemNow: nowFromSystem()) ? found.storedOffset : 0
        if access != .readOnly && found.needsClockRepair(systemNow: nowFromSystem()) {
            try opening {
                try pool.write { db in
                    // A stored offset beyond the bound can only come from an unchecked hub (before
                    // ProtocolLimits): discard it rather than run, or trap, on it.
                    let stored = try Int64.fetchOne(db, sql: "SELECT clock_offset_ms FROM node") ?? 0
                    if Self.isAdoptableOffset(stored, systemNow: nowFromSystem()) {
                        adopted = stored
                    } else {
                        adopted = 0
                        try db.execute(sql: "UPDATE node SET clock_offset_ms = 0")
                        repairs.append("discarded a stored clock offset of \(stored) ms (over the 24 h bound)")
                    }
                    // A hybrid logical clock pushed far ahead by such an offset would stamp every later
                    // result in the future for good: bring it back to the corrected time.
                    let corrected = nowFromSystem() + adopted
                    if let raw = try Int64.fetchOne(db, sql: "SELECT hlc FROM node"),
                       OpenState.hlcRanAhead(raw, corrected: corrected)
                    {
                        let reset = HLCTimestamp(milliseconds: UInt64(corrected), counter: 0)
                        try db.execute(sql: "UPDATE node SET hlc = ?", arguments: [Int64(bitPattern: reset.rawValue)])
                        repairs.append("reset a hybrid logical clock that ran more than 24 h ahead")
                    }
                }
            }
        }
        clockRepairs = repairs
        offset.store(adopted, ordering: .relaxed)
        if !keyless, let existing = found.nodeID, existing != node.bytes {
            throw StoreError.wrongIdentity(databaseNode: String(existing.hexString.prefix(12)), keyNode: node.description)
        }
        if found.provinces == 0 || found.nodeID == nil {
            guard access != .readOnly else { throw StoreOpenError.notInitialized(path: path) }
            let created = now()
            try opening {
                try pool.write { db in
                    if try Int.fetchOne(db, sql: "SELECT count(*) FROM province") == 0 {
                        try AdminUnits.bundled().insert(into: db)
                    }
                    if let existing = try Data.fetchOne(
                        db, sql: "SELECT o.node_id FROM node n JOIN origin o USING (origin_no)")
                    {
                        guard existing == node.bytes else {
                            throw StoreError.wrongIdentity(
                                databaseNode: String(existing.hexString.prefix(12)), keyNode: node.description)
                        }
                    } else {
                        try Self.startEpoch(db, node: node, now: created)
                    }
                }
            }
        }
        try opening { try reloadCurriculumIndex() }
        // Facts derived by an older rule (a migration said so): recompute them, and clear the need
        // in the same transaction, so a rebuild that did not finish runs again at the next start.
        if access != .readOnly,
           try opening({ try pool.read { db in try Int.fetchOne(db, sql: "SELECT facts_rebuild_needed FROM node") } }) == 1
        {
            let index = validatorIndex
            try opening {
                try pool.write { db in
                    try FactKeeper.rebuildAll(db, curriculum: index)
                    try db.execute(sql: "UPDATE node SET facts_rebuild_needed = 0")
                }
            }
        }
    }

    /// What opening finds in a migrated database, read before deciding whether to write.
    struct OpenState {
        var storedOffset: Int64 = 0
        var hlc: Int64?
        var provinces = 0
        var nodeID: Data?

        init(_ db: Database) throws {
            if let row = try Row.fetchOne(db, sql: "SELECT clock_offset_ms, hlc FROM node") {
                storedOffset = row["clock_offset_ms"] ?? 0
                hlc = row["hlc"]
            }
            provinces = try Int.fetchOne(db, sql: "SELECT count(*) FROM province") ?? 0
            nodeID = try Data.fetchOne(db, sql: "SELECT o.node_id FROM node n JOIN origin o USING (origin_no)")
        }

        /// The clock repair's two conditions (see the write in `init`), checked without writing.
        func needsClockRepair(systemNow: Int64) -> Bool {
            guard NodeStore.isAdoptableOffset(storedOffset, systemNow: systemNow) else { return true }
            return hlc.map { Self.hlcRanAhead($0, corrected: systemNow + storedOffset) } ?? false
        }

        static func hlcRanAhead(_ raw: Int64, corrected: Int64) -> Bool {
            corrected > 0
                && HLCTimestamp(rawValue: UInt64(bitPattern: raw)).milliseconds
                    > UInt64(corrected) + UInt64(ProtocolLimits.maxAdoptedClockOffsetMilliseconds)
        }
    }

    /// What was repaired when the database was opened (a clock offset or HLC from an unchecked
    /// hub); the daemon logs it.
    public let clockRepairs: [String]

    /// Draws a fresh random epoch: a new origin with sequence numbers from 1.
    static func startEpoch(_ db: Database, node: NodeID, now: Int64) throws {
        let epoch = Int64(bitPattern: Sodium.randomUInt64())
        try db.execute(sql: "INSERT INTO origin (node_id, epoch) VALUES (?, ?)", arguments: [node.bytes, epoch])
        let originNo = db.lastInsertedRowID
        let hlc = try Int64.fetchOne(db, sql: "SELECT hlc FROM node") ?? 0
        try db.execute(
            sql: "INSERT OR REPLACE INTO node (singleton, origin_no, hlc, next_seq, created_at) VALUES (1, ?, ?, 1, ?)",
            arguments: [originNo, hlc, now])
    }

    /// Gives this database a new epoch. Run after restoring a backup or resetting, so that
    /// `(origin, seq)` pairs already sent from the old copy are never reused. Everything of the old
    /// epoch, sealed or not, is re-issued under the new one: sealing the backup's pending changes
    /// under the old epoch would cut them into other batches than the lost copy uploaded, and the
    /// hub would see equivocation.
    public func rotateEpoch() throws {
        try reissueUnderNewEpoch(reason: "the operator ran `hocvu site restored`")
    }

    /// This node's current origin (node id and epoch).
    public func currentOrigin() throws -> Origin {
        try pool.read { db in
            let epoch = try Int64.fetchOne(
                db, sql: "SELECT o.epoch FROM node n JOIN origin o USING (origin_no)")!
            return Origin(node: node, epoch: UInt64(bitPattern: epoch))
        }
    }
}
