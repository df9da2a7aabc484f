import Foundation
import GRDB
import Sodium
import Testing
import TestSupport

@testable import Store

/// Opening a store: which opens create, which only read, and what is refused (a missing file, an
/// outdated schema read-only, a damaged file).
@Suite struct StoreOpeningTests {
    func bytes(_ path: String) -> Data { FileManager.default.contents(atPath: path) ?? Data() }

    /// A store with some learners, closed (its WAL checkpointed into the file).
    func populated(_ dir: TemporaryDirectory, key: SigningKeyPair, learners: Int = 0) throws -> String {
        let path = dir.file("node.sqlite")
        let store = try NodeStore(path: path, identity: key)
        try store.installCurriculum(SampleCurriculum.make())
        for i in 0..<learners { _ = try store.register(i, commune: 70) }
        try store.sealPending()
        return path
    }

    @Test func onlyCreateCreatesAMissingDatabase() throws {
        let dir = try TemporaryDirectory(prefix: "hocvu-open")
        defer { dir.remove() }
        let key = SigningKeyPair.generate()
        let path = dir.file("typo.sqlite")
        for access in [NodeStore.Access.existing, .readOnly] {
            #expect(throws: StoreOpenError.missing(path: path)) { try NodeStore(path: path, identity: key, access: access) }
            #expect(!FileManager.default.fileExists(atPath: path), "a refused open leaves no file behind")
        }
        #expect(throws: StoreOpenError.missing(path: path)) { try NodeStore.integrityProblems(path: path) }
        _ = try NodeStore(path: path, identity: key, access: .create)
        #expect(FileManager.default.fileExists(atPath: path))
        _ = try NodeStore(path: path, identity: key, access: .existing)
        _ = try NodeStore(path: path, identity: key, access: .readOnly)
    }

    @Test func readOnlyReadsWhileAnotherConnectionHoldsTheWriteLock() throws {
        let dir = try TemporaryDirectory(prefix: "hocvu-open")
        defer { dir.remove() }
        let key = SigningKeyPair.generate()
        let path = try populated(dir, key: key, learners: 3)
        // Another process's writer: BEGIN IMMEDIATE, a write, and the transaction held open.
        var unsafe = Configuration()
        unsafe.allowsUnsafeTransactions = true  // the transaction stays open across accesses, on purpose
        let writer = try DatabaseQueue(path: path, configuration: unsafe)
        try writer.writeWithoutTransaction { db in
            try db.execute(sql: "BEGIN IMMEDIATE")
            try db.execute(sql: "UPDATE node SET next_seq = next_seq")
        }
        defer { try? writer.writeWithoutTransaction { db in try db.execute(sql: "ROLLBACK") } }
        let started = Date()
        let store = try NodeStore(path: path, identity: key, access: .readOnly)
        let report = try store.nationalReport()
        #expect(report.national.learners == 3)
        #expect(try store.enrollments().isEmpty)
        #expect(Date().timeIntervalSince(started) < 2, "no wait on the writer's lock (busy timeout is 5 s)")
    }

    @Test func readOnlyNeverWritesNotEvenARepair() throws {
        let dir = try TemporaryDirectory(prefix: "hocvu-open")
        defer { dir.remove() }
        let key = SigningKeyPair.generate()
        let path = try populated(dir, key: key, learners: 2)
        // A stored clock offset beyond the bound: opening for writing would repair it.
        let q = try DatabaseQueue(path: path)
        try q.write { db in try db.execute(sql: "UPDATE node SET clock_offset_ms = ?", arguments: [Int64(30 * 86_400_000)]) }
        try q.close()
        let before = bytes(path)
        let store = try NodeStore(path: path, identity: key, access: .readOnly)
        #expect(store.clockOffset == 0, "the bad offset is not used")
        #expect(store.clockRepairs.isEmpty)
        _ = try store.nationalReport()
        #expect(bytes(path) == before, "the database file is byte for byte what it was")
        #expect(throws: (any Error).self, "a read-only store refuses writes") { try store.rotateEpoch() }
        // Opening for writing does repair it.
        let writable = try NodeStore(path: path, identity: key, access: .existing)
        #expect(writable.clockRepairs.count == 1)
    }

    @Test func theWriterCommitsWithSynchronousFull() throws {
        let dir = try TemporaryDirectory(prefix: "hocvu-open")
        defer { dir.remove() }
        let key = SigningKeyPair.generate()
        // GRDB's WAL set-up lowers the writer to NORMAL after our own set-up; FULL must win (2 = FULL).
        let created = try NodeStore(path: dir.file("node.sqlite"), identity: key, access: .create)
        #expect(try created.pool.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") } == 2)
        let existing = try NodeStore(path: dir.file("node.sqlite"), identity: key, access: .existing)
        #expect(try existing.pool.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") } == 2)
    }

    @Test func readOnlyRefusesASchemaOlderThanTheBinaryAndTheDaemonMigratesIt() throws {
        let dir = try TemporaryDirectory(prefix: "hocvu-open")
        defer { dir.remove() }
        let key = SigningKeyPair.generate()
        let path = dir.file("old.sqlite")
        let all = NodeStore.migrator.migrations
        let q = try DatabaseQueue(path: path)
        try NodeStore.migrator.migrate(q, upTo: all[all.count - 2])
        try q.close()
        do {
            _ = try NodeStore(path: path, identity: key, access: .readOnly)
            Issue.record("an outdated schema was opened read-only")
        } catch let e as StoreOpenError {
            #expect(e == .schemaOutdated(path: path, pending: [all.last!]))
            #expect(e.description.contains(all.last!))
        }
        _ = try NodeStore(path: path, identity: key, access: .existing)  // what the daemon's start does
        _ = try NodeStore(path: path, identity: key, access: .readOnly)
    }

    @Test func anEmptyFileIsNotADatabaseToRead() throws {
        let dir = try TemporaryDirectory(prefix: "hocvu-open")
        defer { dir.remove() }
        let path = dir.file("empty.sqlite")
        FileManager.default.createFile(atPath: path, contents: Data())
        #expect(throws: StoreOpenError.notInitialized(path: path)) {
            try NodeStore(path: path, identity: .generate(), access: .readOnly)
        }
    }

    @Test func scribbledPagesAreFoundAndRefused() throws {
        let dir = try TemporaryDirectory(prefix: "hocvu-open")
        defer { dir.remove() }
        let key = SigningKeyPair.generate()
        let path = try populated(dir, key: key, learners: 600)
        #expect(try NodeStore.integrityProblems(path: path).isEmpty)
        #expect(try NodeStore(path: path, identity: key, access: .readOnly).integrityProblems().isEmpty)
        // Garbage over 16 KiB in the middle of the file, as a failing disk or a stray write would leave.
        var data = bytes(path)
        #expect(data.count > 256 * 1024)
        var rng = SystemRandomNumberGenerator()
        let start = data.count / 2
        for i in start..<(start + 16_384) { data[i] = UInt8.random(in: 0...255, using: &rng) }
        try data.write(to: URL(fileURLWithPath: path))

        #expect(try !NodeStore.integrityProblems(path: path, .full).isEmpty)
        #expect(try !NodeStore.integrityProblems(path: path, .quick).isEmpty)
        for access in [NodeStore.Access.existing, .readOnly, .create] {
            do {
                _ = try NodeStore(path: path, identity: key, access: access, check: .quick)
                Issue.record("a damaged database was opened (\(access))")
            } catch let e as StoreOpenError {
                guard case .corrupt(let p, let problems) = e else { Issue.record("not reported as damaged: \(e)"); continue }
                #expect(p == path && !problems.isEmpty)
            }
        }
    }

    @Test func aFileThatIsNotSQLiteIsReportedDamaged() throws {
        let dir = try TemporaryDirectory(prefix: "hocvu-open")
        defer { dir.remove() }
        let path = dir.file("text.sqlite")
        try Data(String(repeating: "not a database\n", count: 400).utf8).write(to: URL(fileURLWithPath: path))
        #expect(try !NodeStore.integrityProblems(path: path).isEmpty)
        #expect {
            try NodeStore(path: path, identity: .generate(), access: .existing, check: .quick)
        } throws: { error in
            if case .corrupt? = error as? StoreOpenError { return true }
            return false
        }
    }

    @Test(.enabled(if: geteuid() != 0, "root reads every file")) func permissionDeniedNamesTheOwner() throws {
        let dir = try TemporaryDirectory(prefix: "hocvu-open")
        defer { dir.remove() }
        let key = SigningKeyPair.generate()
        let path = try populated(dir, key: key)
        chmod(path, 0o200)
        defer { chmod(path, 0o600) }
        do {
            _ = try NodeStore(path: path, identity: key, access: .readOnly)
            Issue.record("opened a file this user may not read")
        } catch let e as StoreOpenError {
            guard case .permissionDenied(let p, let owner, _, let wanted) = e else { Issue.record("\(e)"); return }
            #expect(p == path && wanted == "read" && owner?.mode == 0o200)
            #expect(e.description.contains("permission denied"))
        }
    }
}
