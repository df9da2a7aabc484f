public import Foundation

/// Content-named chunk files under one directory: `<dir>/<first two hex>/<hash>`.
///
/// A chunk is written to a temporary name, fsynced, renamed into place and its directory
/// fsynced, so after a crash a chunk file either is complete and verified or does not exist;
/// leftover temporary files are removed on open. Presence of the final name is the only record
/// of what is held, so a restarted fetch never refetches a verified chunk.
public final class ChunkStore: Sendable {
    public let directory: String

    /// - Parameter reader: true for a process part that only reads chunks (the site's portal): it
    ///   leaves the temporary files alone, which the fetch writing them may still be writing.
    public init(directory: String, reader: Bool = false) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if !reader { try removeTemporaries() }
    }

    func path(_ hash: String) -> String { "\(directory)/\(hash.prefix(2))/\(hash)" }

    /// The file holding chunk `hash` (a server reads ranges of it without copying the whole chunk).
    public func filePath(_ hash: String) -> String { path(hash) }

    public func has(_ hash: String) -> Bool { access(path(hash), F_OK) == 0 }

    /// The chunks of `refs` not held here.
    public func missing(_ refs: [Manifest.ChunkRef]) -> [Manifest.ChunkRef] { refs.filter { !has($0.hash) } }

    public func read(_ hash: String) throws -> Data {
        do { return try Data(contentsOf: URL(fileURLWithPath: path(hash))) } catch {
            throw ChunkStoreError.io("cannot read chunk \(hash.prefix(16))… in \(directory): \(error.localizedDescription)")
        }
    }

    /// Reads a chunk and checks it is what its name and the manifest say (BLAKE2b-256 and size):
    /// what a node serves to others, so a file that rotted on disk is never sent.
    /// - Throws: ``ChunkStoreError/corrupt(_:)`` for a damaged file, ``ChunkStoreError/io(_:)`` if unreadable.
    public func readVerified(_ hash: String, size: Int) throws -> Data {
        let bytes = try read(hash)
        guard bytes.count == size else {
            throw ChunkStoreError.corrupt("chunk \(hash) in \(directory) is \(bytes.count) bytes on disk, not \(size)")
        }
        let actual = Chunker.name(bytes)
        guard actual == hash else {
            throw ChunkStoreError.corrupt("chunk \(hash) in \(directory) hashes to \(actual.prefix(16))… on disk")
        }
        return bytes
    }

    /// The directory damaged chunk files are moved to (never deleted: an operator may want them).
    public var quarantineDirectory: String { "\(directory)/quarantine" }

    /// Moves a damaged chunk file aside to ``quarantineDirectory`` (as `<hash>.<unix ms>`), so it is
    /// no longer held or served. Returns where it went.
    @discardableResult
    public func quarantine(_ hash: String, now: Int64) throws -> String {
        try FileManager.default.createDirectory(atPath: quarantineDirectory, withIntermediateDirectories: true)
        let target = "\(quarantineDirectory)/\(hash).\(now)"
        guard rename(path(hash), target) == 0 else { throw ChunkStoreError.io(Self.errno("move chunk \(hash) to \(target)")) }
        try fsyncPath("\(directory)/\(hash.prefix(2))")
        try fsyncPath(quarantineDirectory)
        return target
    }

    /// Stores bytes the caller has verified against `hash`. Durable when it returns.
    public func write(_ hash: String, _ bytes: Data) throws {
        let dir = "\(directory)/\(hash.prefix(2))"
        if access(dir, F_OK) != 0 {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try fsyncPath(directory)
        }
        let temporary = "\(dir)/.\(hash).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ChunkStoreError.io(Self.errno("create \(temporary)")) }
        var ok = bytes.withUnsafeBytes { raw -> Bool in
            var offset = 0
            while offset < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 { return false }
                offset += n
            }
            return true
        }
        // A full disk surfaces here or at fsync: report it, never retry fsync in a loop.
        ok = ok && fsync(fd) == 0
        let saved = Foundation.errno
        close(fd)
        guard ok else {
            unlink(temporary)
            if saved == ENOSPC || saved == EDQUOT {
                throw ChunkStoreError.diskFull(
                    "disk full: cannot write chunk \(hash.prefix(16))… to \(dir) (\(Self.freeBytes(in: dir)) free on that filesystem, by statvfs)")
            }
            Foundation.errno = saved
            throw ChunkStoreError.io(Self.errno("write chunk \(hash.prefix(16))… to \(dir)"))
        }
        guard rename(temporary, path(hash)) == 0 else {
            unlink(temporary)
            throw ChunkStoreError.io(Self.errno("rename chunk into \(dir)"))
        }
        try fsyncPath(dir)
    }

    /// Every chunk held.
    public func all() -> Set<String> { Self.held(in: directory) }

    /// The chunks under `directory`, read without opening a store (which would remove another
    /// process's in-flight temporary files): for status and tests.
    public static func held(in directory: String) -> Set<String> {
        var out = Set<String>()
        let fm = FileManager.default
        for sub in (try? fm.contentsOfDirectory(atPath: directory)) ?? [] where sub.count == 2 {
            for name in (try? fm.contentsOfDirectory(atPath: "\(directory)/\(sub)")) ?? [] where name.count == 64 {
                out.insert(name)
            }
        }
        return out
    }

    /// Deletes every chunk not in `keep`. Returns the number removed.
    @discardableResult
    public func collect(keeping keep: Set<String>) -> Int {
        var removed = 0
        for hash in all() where !keep.contains(hash) {
            if unlink(path(hash)) == 0 { removed += 1 }
        }
        return removed
    }

    /// Reassembles one file of a release from its chunks, checking each.
    public func assemble(_ file: Manifest.File) throws -> Data {
        var out = Data(capacity: file.size)
        for c in file.chunks {
            let bytes = try read(c.hash)
            guard Chunker.name(bytes) == c.hash else {
                throw ChunkStoreError.corrupt("chunk \(c.hash.prefix(16))… of \(file.path) is damaged on disk")
            }
            out += bytes
        }
        return out
    }

    private func removeTemporaries() throws {
        let fm = FileManager.default
        for sub in (try? fm.contentsOfDirectory(atPath: directory)) ?? [] where sub.count == 2 {
            for name in (try? fm.contentsOfDirectory(atPath: "\(directory)/\(sub)")) ?? [] where name.hasSuffix(".tmp") {
                unlink("\(directory)/\(sub)/\(name)")
            }
        }
    }

    private func fsyncPath(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw ChunkStoreError.io(Self.errno("open \(path)")) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw ChunkStoreError.io(Self.errno("fsync \(path)")) }
    }

    /// Free space for this process on the filesystem holding `dir`, as an operator reads it.
    static func freeBytes(in dir: String) -> String {
        var st = statvfs()
        guard statvfs(dir, &st) == 0 else { return "unknown space" }
        let n = Double(UInt64(st.f_bavail) * UInt64(st.f_frsize))
        return n < 1_024 ? "\(Int(n)) B" : n < 1_048_576 ? String(format: "%.1f KiB", n / 1_024) : String(format: "%.1f MiB", n / 1_048_576)
    }

    static func errno(_ what: String) -> String { "\(what): \(String(cString: strerror(Foundation.errno)))" }
}

public enum ChunkStoreError: Error, CustomStringConvertible {
    case io(String)
    case corrupt(String)
    /// No space left: nothing was stored; the fetch asks again after a backoff and resumes.
    case diskFull(String)
    public var description: String {
        switch self {
        case .diskFull(let s): "\(s); free some space: the release fetch resumes by itself, results keep syncing"
        case .io(let s): "\(s) (check free space and permissions of the state directory)"
        case .corrupt(let s): "\(s); remove it and the next sync fetches it again"
        }
    }
}

extension ReleaseDownload {
    /// Verifies a received chunk and, when it is one we asked for, stores it durably and counts it
    /// as held — the one receive path of the hub (from an admin) and of sites (from the hub).
    /// - Returns: `.verified` only once the chunk is on disk.
    /// - Throws: the store's error (disk full); the chunk stays outstanding and is asked for again.
    public mutating func receive(hash: String, bytes: Data, into chunks: ChunkStore, now: Int64) throws -> ChunkFetch.Outcome {
        let outcome = received(hash: hash, bytes: bytes, now: now)
        if outcome == .verified {
            try chunks.write(hash, bytes)
            stored(hash)
        }
        return outcome
    }
}
