import Dispatch
public import Foundation
public import Logging
public import Merge
public import Model
public import Node
public import Store
import NIOCore
import NIOSSL
import PostgresNIO
import Synchronization

/// The shared state of several hub processes in PostgreSQL (docs/multi-hub.md): the signed batch
/// log, each origin's head (contiguous run, last batch id, quarantine) and the enrollments.
///
/// Isolation: READ COMMITTED, with an explicit row lock (`SELECT … FOR UPDATE`, in `origin_no`
/// order) on every origin a transaction appends to. Two hubs receiving the same origin's batches
/// therefore decide one after the other, each seeing the other's commit, so the watermark, the
/// hash chain and equivocation are judged exactly as on one hub; hubs appending for different
/// origins never wait for each other. A deadlock or serialization failure is retried.
public final class PostgresHubLog: SharedHubLog {
    public struct Settings: Sendable, Equatable {
        /// A TCP host, or an absolute directory holding the server's Unix socket.
        public var host: String
        public var port: Int
        public var database: String
        public var user: String
        public var password: String?
        public var poolSize: Int
        /// TLS to the database, as libpq's `sslmode`: `disable`; `prefer` and `require` encrypt
        /// without checking the server's certificate; `verify-full` checks it against the system's
        /// trust store and the host name (use it between machines).
        public var tls: String
        /// An operation that has not finished by then fails: uploads are answered BUSY.
        public var timeoutSeconds: Double
        /// This hub's name, stored with each batch it appended (for the operator).
        public var hubName: String

        public init(
            host: String, port: Int = 5432, database: String, user: String, password: String? = nil, poolSize: Int = 8,
            tls: String = "prefer", timeoutSeconds: Double = 10, hubName: String
        ) {
            self.host = host
            self.port = port
            self.database = database
            self.user = user
            self.password = password
            self.poolSize = poolSize
            self.tls = tls
            self.timeoutSeconds = timeoutSeconds
            self.hubName = hubName
        }
    }

    /// The schema this build reads and writes; `hocvu hub migrate` brings a database to it.
    public static let schemaVersion = PostgresSchema.migrations.count

    let client: PostgresClient
    let settings: Settings
    let logger: Logger
    private let runner: Task<Void, Never>

    public init(_ settings: Settings, logger: Logger) {
        var configuration: PostgresClient.Configuration
        if settings.host.hasPrefix("/") {
            // libpq's convention: a directory holding .s.PGSQL.<port>.
            configuration = .init(
                unixSocketPath: "\(settings.host)/.s.PGSQL.\(settings.port)", username: settings.user,
                password: settings.password, database: settings.database)
        } else {
            var unchecked = TLSConfiguration.makeClientConfiguration()
            unchecked.certificateVerification = .none
            let tls: PostgresClient.Configuration.TLS =
                switch settings.tls {
                case "disable": .disable
                case "require": .require(unchecked)
                case "verify-full": .require(.makeClientConfiguration())
                default: .prefer(unchecked)
                }
            configuration = .init(
                host: settings.host, port: settings.port, username: settings.user, password: settings.password,
                database: settings.database, tls: tls)
        }
        configuration.options.maximumConnections = max(1, settings.poolSize)
        configuration.options.minimumConnections = 0
        configuration.options.connectTimeout = .seconds(min(10, max(1, Int(settings.timeoutSeconds))))
        configuration.options.keepAliveBehavior = .init(frequency: .seconds(15))
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        self.settings = settings
        self.logger = logger
        runner = Task(executorPreference: PostgresExecutor.shared) { await client.run() }
    }

    /// Stops the connection pool. The object is unusable afterwards.
    public func close() { runner.cancel() }

    deinit { runner.cancel() }

    // MARK: Blocking bridge

    /// Runs `body` on the Swift concurrency pool and waits for it, at most the configured timeout:
    /// the hub's engine is a plain thread (libzmq), never a task, so waiting here blocks no task.
    func blocking<T: Sendable>(_ what: String, _ body: @escaping @Sendable () async throws -> T) throws -> T {
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<Result<T, any Error>?>(nil)
        let timeout = settings.timeoutSeconds
        // On an executor of its own, never the global concurrency pool: the caller blocks a thread,
        // and a pool whose threads are all blocked (2 cores, 2 threads) would never run this.
        let task = Task(executorPreference: PostgresExecutor.shared) {
            let r: Result<T, any Error>
            do { r = .success(try await body()) } catch { r = .failure(error) }
            result.withLock { $0 = r }
            done.signal()
        }
        if done.wait(timeout: .now() + timeout) == .timedOut {
            task.cancel()
            throw SharedLogError("\(what): no answer from PostgreSQL at \(endpoint) within \(Int(timeout)) s")
        }
        switch result.withLock({ $0! }) {
        case .success(let v): return v
        case .failure(let e): throw SharedLogError("\(what): \(Self.describe(e)) (PostgreSQL at \(endpoint))")
        }
    }

    var endpoint: String { "\(settings.host):\(settings.port)/\(settings.database)" }

    /// Awaits `body` at most the configured timeout, for async callers (the daemon's start, migrate):
    /// with the database down, postgres-nio waits for a connection for as long as it is asked to.
    func withDeadline<T: Sendable>(_ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let timeout = settings.timeoutSeconds
        let endpoint = endpoint
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let once = Once(continuation)
            let work = Task(executorPreference: PostgresExecutor.shared) {
                do { once.resume(with: .success(try await body())) } catch { once.resume(with: .failure(error)) }
            }
            Task {
                try? await Task.sleep(for: .milliseconds(Int(timeout * 1_000)))
                work.cancel()
                once.resume(with: .failure(SharedLogError("\(what): no answer from PostgreSQL at \(endpoint) within \(Int(timeout)) s")))
            }
        }
    }

    /// PSQLError's own description hides the server's message; the message names no data.
    public static func describe(_ error: any Error) -> String {
        if let t = error as? PostgresTransactionError, let inner = t.closureError ?? t.commitError ?? t.beginError {
            return describe(inner)
        }
        if let e = error as? PSQLError {
            if let message = e.serverInfo?[.message] {
                return "\(message) (SQLSTATE \(e.serverInfo?[.sqlState] ?? "?"))"
            }
            return "\(e.code)"
        }
        if let e = error as? SharedLogError { return e.description }
        return "\(error)"
    }

    /// Deadlocks and serialization failures are transient: the transaction is run again.
    static func isRetryable(_ error: any Error) -> Bool {
        // postgres-nio wraps what failed inside a transaction.
        if let t = error as? PostgresTransactionError, let inner = t.closureError ?? t.commitError ?? t.beginError {
            return isRetryable(inner)
        }
        guard let state = (error as? PSQLError)?.serverInfo?[.sqlState] else { return false }
        return state == "40P01" || state == "40001"
    }

    // MARK: Schema

    /// The schema version the database holds (0: none).
    public func installedSchemaVersion() throws -> Int {
        try blocking("reading the schema version") { [self] in try await installedSchemaVersionAsync() }
    }

    /// For callers in an async context (the daemon's start, the CLI): no thread is blocked.
    public func installedSchemaVersionAsync() async throws -> Int {
        let exists = try await client.query("SELECT to_regclass('hocvu_schema') IS NOT NULL")
        for try await (e) in exists.decode(Bool.self) where !e { return 0 }
        let rows = try await client.query("SELECT version FROM hocvu_schema")
        for try await (v) in rows.decode(Int.self) { return v }
        return 0
    }

    /// Creates or upgrades the schema to ``schemaVersion`` (several hubs may run it at once: it
    /// takes a lock). - Returns: the versions applied.
    @discardableResult
    public func migrate() throws -> [Int] {
        try blocking("migrating the schema") { [self] in try await migrateAsync() }
    }

    @discardableResult
    public func migrateAsync() async throws -> [Int] {
        try await withDeadline("migrating the schema") { [self] in try await migrateUnbounded() }
    }

    private func migrateUnbounded() async throws -> [Int] {
        try await client.withTransaction(logger: logger) { [logger] conn in
            try await conn.query("SELECT pg_advisory_xact_lock(7400001)", logger: logger)
            try await conn.query("CREATE TABLE IF NOT EXISTS hocvu_schema (version integer NOT NULL)", logger: logger)
            var current = 0
            for try await (v) in try await conn.query("SELECT version FROM hocvu_schema", logger: logger).decode(Int.self) {
                current = v
            }
            if current == 0 { try await conn.query("INSERT INTO hocvu_schema (version) VALUES (0)", logger: logger) }
            var applied = [Int]()
            for (i, sql) in PostgresSchema.migrations.enumerated() where i + 1 > current {
                for statement in sql { try await conn.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                try await conn.query("UPDATE hocvu_schema SET version = \(i + 1)", logger: logger)
                applied.append(i + 1)
            }
            return applied
        }
    }

    /// Fails with what to do unless the database holds this build's schema.
    public func checkSchema() throws {
        try Self.judge(schema: try installedSchemaVersion(), endpoint: endpoint)
    }

    public func checkSchemaAsync() async throws {
        let v: Int
        do { v = try await withDeadline("reading the schema version") { [self] in try await installedSchemaVersionAsync() } } catch let e as SharedLogError {
            throw e
        } catch {
            throw SharedLogError("reading the schema version: \(Self.describe(error)) (PostgreSQL at \(endpoint))")
        }
        try Self.judge(schema: v, endpoint: endpoint)
    }

    static func judge(schema v: Int, endpoint: String) throws {
        guard v == schemaVersion else {
            if v < schemaVersion {
                throw SharedLogError(
                    "the database \(endpoint) holds schema version \(v), this hocvu needs \(schemaVersion): run `hocvu hub migrate`")
            }
            throw SharedLogError(
                "the database \(endpoint) holds schema version \(v), newer than this hocvu's \(schemaVersion): upgrade hocvu on this hub")
        }
    }

    // MARK: The log

    public func append(_ batches: [PreparedBatch]) throws -> [BatchAdmission] {
        guard !batches.isEmpty else { return [] }
        let hub = settings.hubName
        // The server gives up before this client does: a transaction this hub no longer waits for
        // must not commit later, nor hold origins' row locks against the other hubs.
        let serverTimeout = max(500, Int(settings.timeoutSeconds * 1_000) - 500)
        return try blocking("appending to the shared log") { [client, logger] in
            var attempt = 0
            while true {
                do {
                    return try await client.withTransaction(logger: logger) { conn in
                        try await conn.query(PostgresQuery(unsafeSQL: "SET LOCAL statement_timeout = \(serverTimeout)"), logger: logger)
                        try await conn.query(PostgresQuery(unsafeSQL: "SET LOCAL lock_timeout = \(serverTimeout)"), logger: logger)
                        return try await Self.append(batches, hub: hub, conn: conn, logger: logger)
                    }
                } catch where Self.isRetryable(error) && attempt < 5 {
                    attempt += 1
                    try await Task.sleep(for: .milliseconds(Int.random(in: 5...50) << attempt))
                }
            }
        }
    }

    private static func key(_ o: Origin) -> (ByteBuffer, Int64) {
        (ByteBuffer(bytes: o.node.bytes), Int64(bitPattern: o.epoch))
    }

    private static func append(
        _ batches: [PreparedBatch], hub: String, conn: PostgresConnection, logger: Logger
    ) async throws -> [BatchAdmission] {
        // Only batches whose range and signature pass create or lock an origin's row.
        let candidates = batches.filter { $0.batch.hasValidRange && !$0.countMismatch && $0.signatureValid }
        let origins = Set(candidates.map(\.batch.origin)).sorted {
            $0.node.bytes.lexicographicallyPrecedes($1.node.bytes) || ($0.node.bytes == $1.node.bytes && $0.epoch < $1.epoch)
        }
        struct Locked {
            var no: Int64
            var head: BatchAdmission.Head
        }
        var locked = [Origin: Locked]()
        if !origins.isEmpty {
            let nodes = origins.map { key($0).0 }
            let epochs = origins.map { key($0).1 }
            // In key order, so two hubs creating the same new origins never wait on each other crosswise.
            try await conn.query(
                """
                INSERT INTO hub_origin (node_id, epoch)
                SELECT n, e FROM unnest(\(nodes)::bytea[], \(epochs)::bigint[]) AS k(n, e) ORDER BY n, e
                ON CONFLICT (node_id, epoch) DO NOTHING
                """, logger: logger)
            let rows = try await conn.query(
                """
                SELECT origin_no, node_id, epoch, contiguous_seq, last_batch_id, quarantine_reason FROM hub_origin
                WHERE (node_id, epoch) IN (SELECT * FROM unnest(\(nodes)::bytea[], \(epochs)::bigint[]))
                ORDER BY origin_no FOR UPDATE
                """, logger: logger)
            for try await (no, node, epoch, contiguous, last, quarantine) in rows.decode(
                (Int64, ByteBuffer, Int64, Int64, ByteBuffer, String?).self)
            {
                guard let id = NodeID(bytes: Data(bytes: node)) else { continue }
                locked[Origin(node: id, epoch: UInt64(bitPattern: epoch))] = Locked(
                    no: no,
                    head: .init(contiguous: UInt64(max(0, contiguous)), lastBatchID: Data(bytes: last), quarantine: quarantine))
            }
        }
        // A resend overlaps what is stored: the nearest stored batch, read before deciding.
        var storedNearest = [Int: BatchAdmission.Stored]()
        for (i, p) in batches.enumerated() {
            guard let l = locked[p.batch.origin], p.batch.firstSeq <= l.head.contiguous, p.batch.hasValidRange else { continue }
            let rows = try await conn.query(
                """
                SELECT first_seq, last_seq, batch_id FROM hub_batch
                WHERE origin_no = \(l.no) AND first_seq <= \(Int64(p.batch.lastSeq)) ORDER BY first_seq DESC LIMIT 1
                """, logger: logger)
            for try await (first, last, id) in rows.decode((Int64, Int64, ByteBuffer).self) {
                storedNearest[i] = .init(firstSeq: UInt64(max(0, first)), lastSeq: UInt64(max(0, last)), id: Data(bytes: id))
            }
        }
        var decisions = [BatchAdmission]()
        decisions.reserveCapacity(batches.count)
        var appended = [Origin: [BatchAdmission.Stored]]()
        var rows = (no: [Int64](), first: [Int64](), last: [Int64](), id: [ByteBuffer](), previous: [ByteBuffer](),
                    body: [ByteBuffer](), signature: [ByteBuffer]())
        var quarantined = [(Int64, String)]()
        for (i, p) in batches.enumerated() {
            let b = p.batch
            let d = BatchAdmission.decide(
                b, id: p.id, signatureValid: p.signatureValid, countMismatch: p.countMismatch, isOwnOrigin: false,
                head: { locked[b.origin]?.head ?? .init() },
                nearest: {
                    // This transaction's own appends are nearer than anything stored before it.
                    let mine = appended[b.origin]?.last { $0.firstSeq <= b.lastSeq }
                    return mine ?? storedNearest[i]
                })
            decisions.append(d)
            switch d {
            case .accept:
                guard var l = locked[b.origin] else { continue }
                l.head.contiguous = b.lastSeq
                l.head.lastBatchID = p.id
                locked[b.origin] = l
                appended[b.origin, default: []].append(.init(firstSeq: b.firstSeq, lastSeq: b.lastSeq, id: p.id))
                rows.no.append(l.no)
                rows.first.append(Int64(b.firstSeq))
                rows.last.append(Int64(b.lastSeq))
                rows.id.append(ByteBuffer(bytes: p.id))
                rows.previous.append(ByteBuffer(bytes: b.previousID))
                rows.body.append(ByteBuffer(bytes: b.body))
                rows.signature.append(ByteBuffer(bytes: b.signature))
            case .quarantineOrigin(let why, _):
                guard var l = locked[b.origin], l.head.quarantine == nil else { continue }
                l.head.quarantine = why
                locked[b.origin] = l
                quarantined.append((l.no, why))
            case .duplicate, .refuse:
                break
            }
        }
        if !rows.no.isEmpty {
            try await conn.query(
                """
                INSERT INTO hub_batch (origin_no, first_seq, last_seq, batch_id, previous_id, body, signature, hub)
                SELECT *, \(hub) FROM unnest(\(rows.no)::bigint[], \(rows.first)::bigint[], \(rows.last)::bigint[],
                  \(rows.id)::bytea[], \(rows.previous)::bytea[], \(rows.body)::bytea[], \(rows.signature)::bytea[])
                """, logger: logger)
            let movedNos = Set(rows.no)
            let moved = locked.values.filter { movedNos.contains($0.no) }
            let nos = moved.map(\.no)
            let seqs = moved.map { Int64($0.head.contiguous) }
            let ids = moved.map { ByteBuffer(bytes: $0.head.lastBatchID) }
            try await conn.query(
                """
                UPDATE hub_origin o SET contiguous_seq = u.c, last_batch_id = u.id
                FROM unnest(\(nos)::bigint[], \(seqs)::bigint[], \(ids)::bytea[]) AS u(no, c, id) WHERE o.origin_no = u.no
                """, logger: logger)
        }
        for (no, why) in quarantined {
            try await conn.query(
                "UPDATE hub_origin SET quarantine_reason = \(why) WHERE origin_no = \(no) AND quarantine_reason IS NULL",
                logger: logger)
        }
        return decisions
    }

    public func versionVector(of nodes: Set<NodeID>) throws -> VersionVector {
        guard !nodes.isEmpty else { return VersionVector() }
        let keys = nodes.map { ByteBuffer(bytes: $0.bytes) }
        return try blocking("reading the log's version vector") { [client] in
            try await Self.vector(
                client.query(
                    "SELECT node_id, epoch, contiguous_seq FROM hub_origin WHERE node_id = ANY(\(keys)::bytea[]) AND contiguous_seq > 0"))
        }
    }

    public func welcomeState(of node: NodeID) throws -> (have: VersionVector, lastIDs: [Origin: Data]) {
        let key = ByteBuffer(bytes: node.bytes)
        return try blocking("reading a site's state in the log") { [client] in
            var vv = VersionVector()
            var ids = [Origin: Data]()
            // One statement: the vector and the ids are of the same commit (another hub may append between two).
            let rows = try await client.query(
                "SELECT epoch, contiguous_seq, last_batch_id FROM hub_origin WHERE node_id = \(key) AND contiguous_seq > 0")
            for try await (epoch, seq, id) in rows.decode((Int64, Int64, ByteBuffer).self) {
                let origin = Origin(node: node, epoch: UInt64(bitPattern: epoch))
                vv[origin] = UInt64(max(0, seq))
                ids[origin] = Data(bytes: id)
            }
            return (vv, ids)
        }
    }

    public func heads() throws -> VersionVector {
        try blocking("reading the log's heads") { [client] in
            try await Self.vector(client.query("SELECT node_id, epoch, contiguous_seq FROM hub_origin WHERE contiguous_seq > 0"))
        }
    }

    /// Rows of (node_id, epoch, contiguous_seq) as a version vector.
    private static func vector(_ rows: PostgresRowSequence) async throws -> VersionVector {
        var vv = VersionVector()
        for try await (node, epoch, seq) in rows.decode((ByteBuffer, Int64, Int64).self) {
            guard let id = NodeID(bytes: Data(bytes: node)) else { continue }
            vv[Origin(node: id, epoch: UInt64(bitPattern: epoch))] = UInt64(max(0, seq))
        }
        return vv
    }

    public func batches(of origin: Origin, after seq: UInt64, limit: Int) throws -> [Batch] {
        let (node, epoch) = Self.key(origin)
        let after = Int64(clamping: seq)
        return try blocking("reading batches from the shared log") { [client] in
            var out = [Batch]()
            let rows = try await client.query(
                """
                SELECT b.first_seq, b.last_seq, b.previous_id, b.body, b.signature FROM hub_batch b
                JOIN hub_origin o ON o.origin_no = b.origin_no
                WHERE o.node_id = \(node) AND o.epoch = \(epoch) AND b.first_seq > \(after)
                ORDER BY b.first_seq LIMIT \(max(1, limit))
                """)
            for try await (first, last, previous, body, signature) in rows.decode(
                (Int64, Int64, ByteBuffer, ByteBuffer, ByteBuffer).self)
            {
                out.append(
                    Batch(
                        origin: origin, firstSeq: UInt64(max(0, first)), lastSeq: UInt64(max(0, last)),
                        previousID: Data(bytes: previous), body: Data(bytes: body), signature: Data(bytes: signature)))
            }
            return out
        }
    }

    /// Batches the log holds and changes in them (for `hocvu hub report` and the tests).
    public func counts() throws -> (batches: Int, changes: Int, quarantinedOrigins: Int) {
        try blocking("counting the shared log") { [client] in
            var out = (0, 0, 0)
            let rows = try await client.query(
                """
                SELECT (SELECT count(*) FROM hub_batch), (SELECT coalesce(sum(last_seq - first_seq + 1), 0)::bigint FROM hub_batch),
                       (SELECT count(*) FROM hub_origin WHERE quarantine_reason IS NOT NULL)
                """)
            for try await (b, c, q) in rows.decode((Int, Int, Int).self) { out = (b, c, q) }
            return out
        }
    }

    // MARK: Enrollments

    public func enrollmentVersion() throws -> Int64 {
        try blocking("reading the enrollment version") { [client] in
            for try await (v) in try await client.query("SELECT version FROM hub_enrollment_version").decode(Int64.self) {
                return v
            }
            return 0
        }
    }

    public func enrollments() throws -> [Enrollment] {
        try blocking("reading enrollments") { [client] in
            var out = [Enrollment]()
            let rows = try await client.query(
                "SELECT commune_code, identity_key, transport_key, enrolled_at, revoked_at FROM hub_enrollment ORDER BY commune_code")
            for try await (c, i, t, at, revoked) in rows.decode((Int, ByteBuffer, ByteBuffer, Int64, Int64?).self) {
                out.append(
                    Enrollment(
                        communeCode: c, identityKey: Data(bytes: i), transportKey: Data(bytes: t), enrolledAt: at, revokedAt: revoked))
            }
            return out
        }
    }

    /// Enrolls a site for every hub on this database (the caller checked the commune code).
    /// A revoked commune may be enrolled again with new keys.
    public func enroll(communeCode: Int, identityKey: Data, transportKey: Data, at: Int64) throws {
        guard identityKey.count == 32 else { throw StoreError.badKey("identity key") }
        guard transportKey.count == 32 else { throw StoreError.badKey("transport key") }
        let identity = ByteBuffer(bytes: identityKey)
        let transport = ByteBuffer(bytes: transportKey)
        let outcome: Int = try blocking("enrolling a site") { [client, logger] in
            try await client.withTransaction(logger: logger) { conn in
                try await conn.query("SELECT version FROM hub_enrollment_version FOR UPDATE", logger: logger)
                let existing = try await conn.query(
                    "SELECT revoked_at FROM hub_enrollment WHERE commune_code = \(communeCode)", logger: logger)
                for try await (revoked) in existing.decode(Int64?.self) {
                    if revoked == nil { return 1 }
                    try await conn.query("DELETE FROM hub_enrollment WHERE commune_code = \(communeCode)", logger: logger)
                }
                let clash = try await conn.query(
                    "SELECT count(*) FROM hub_enrollment WHERE identity_key = \(identity) OR transport_key = \(transport)", logger: logger)
                for try await (n) in clash.decode(Int.self) where n > 0 { return 2 }
                try await conn.query(
                    """
                    INSERT INTO hub_enrollment (commune_code, identity_key, transport_key, enrolled_at)
                    VALUES (\(communeCode), \(identity), \(transport), \(at))
                    """, logger: logger)
                try await conn.query("UPDATE hub_enrollment_version SET version = version + 1", logger: logger)
                return 0
            }
        }
        switch outcome {
        case 1: throw StoreError.alreadyEnrolled(communeCode)
        case 2: throw StoreError.keyInUse
        default: break
        }
    }

    /// Revokes a site at every hub on this database: each refuses it within its follow interval.
    public func revoke(communeCode: Int, at: Int64) throws {
        let changed: Bool = try blocking("revoking a site") { [client, logger] in
            try await client.withTransaction(logger: logger) { conn in
                try await conn.query("SELECT version FROM hub_enrollment_version FOR UPDATE", logger: logger)
                let rows = try await conn.query(
                    """
                    UPDATE hub_enrollment SET revoked_at = coalesce(revoked_at, \(at)) WHERE commune_code = \(communeCode)
                    RETURNING commune_code
                    """, logger: logger)
                var n = 0
                for try await _ in rows { n += 1 }
                if n > 0 { try await conn.query("UPDATE hub_enrollment_version SET version = version + 1", logger: logger) }
                return n > 0
            }
        }
        guard changed else { throw StoreError.notEnrolled(communeCode) }
    }
}

/// The PostgreSQL schema, one list of statements per version (docs/multi-hub.md, "Schema").
/// Never edit a released version: add one.
public enum PostgresSchema {
    public static let migrations: [[String]] = [
        [
            """
            CREATE TABLE hub_origin (
              origin_no bigserial PRIMARY KEY,
              node_id bytea NOT NULL CHECK (length(node_id) = 32),
              epoch bigint NOT NULL,
              contiguous_seq bigint NOT NULL DEFAULT 0 CHECK (contiguous_seq >= 0),
              last_batch_id bytea NOT NULL DEFAULT '\\x0000000000000000000000000000000000000000000000000000000000000000',
              quarantine_reason text,
              UNIQUE (node_id, epoch)
            )
            """,
            """
            CREATE TABLE hub_batch (
              origin_no bigint NOT NULL REFERENCES hub_origin (origin_no),
              first_seq bigint NOT NULL CHECK (first_seq >= 1),
              last_seq bigint NOT NULL CHECK (last_seq >= first_seq),
              batch_id bytea NOT NULL CHECK (length(batch_id) = 32),
              previous_id bytea NOT NULL CHECK (length(previous_id) = 32),
              body bytea NOT NULL,
              signature bytea NOT NULL CHECK (length(signature) = 64),
              hub text NOT NULL,
              received_at timestamptz NOT NULL DEFAULT now(),
              PRIMARY KEY (origin_no, first_seq)
            )
            """,
            """
            CREATE TABLE hub_enrollment (
              commune_code integer PRIMARY KEY CHECK (commune_code > 0),
              identity_key bytea NOT NULL UNIQUE CHECK (length(identity_key) = 32),
              transport_key bytea NOT NULL UNIQUE CHECK (length(transport_key) = 32),
              enrolled_at bigint NOT NULL,
              revoked_at bigint
            )
            """,
            "CREATE TABLE hub_enrollment_version (version bigint NOT NULL)",
            "INSERT INTO hub_enrollment_version (version) VALUES (0)",
        ]
    ]
}

extension Data {
    init(bytes buffer: ByteBuffer) { self.init(buffer.readableBytesView) }
}

/// A task executor on a serial dispatch queue of its own: the database's work (the connection pool's
/// run loop, each query awaited by a blocked caller) never waits for a thread of the global pool,
/// which callers blocking on it could exhaust. Dispatch gives a serial queue its own thread.
final class PostgresExecutor: TaskExecutor, @unchecked Sendable {
    static let shared = PostgresExecutor()
    private let queue = DispatchQueue(label: "hocvu.postgres")

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }
}

/// Resumes a continuation once, whichever of two racers comes first.
final class Once<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T, any Error>?>
    init(_ c: CheckedContinuation<T, any Error>) { continuation = Mutex(c) }
    func resume(with result: Result<T, any Error>) {
        continuation.withLock { c in
            c?.resume(with: result)
            c = nil
        }
    }
}
