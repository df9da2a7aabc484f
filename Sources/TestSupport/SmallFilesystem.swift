import Foundation

/// A tmpfs of a few MiB mounted for one test: a disk that really fills (ENOSPC → SQLITE_FULL).
/// Needs root (CI runs as root); elsewhere the tests that use it are skipped, saying why.
public struct SmallFilesystem {
    public let path: String

    /// Runs mount(8) or umount(8); true when it exits 0.
    private static func run(_ args: [String]) -> Bool {
        guard let tool = ["/usr/bin/\(args[0])", "/bin/\(args[0])"].first(where: FileManager.default.isExecutableFile)
        else { return false }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = Array(args.dropFirst())
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }

    /// Mounts a tmpfs of `kibibytes` on a fresh directory, or nil when this process cannot.
    public static func mount(kibibytes: Int) -> SmallFilesystem? {
        guard geteuid() == 0 else { return nil }
        let path = FileManager.default.temporaryDirectory.path + "/hocvu-small-fs-\(UUID().uuidString.prefix(8))"
        guard (try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)) != nil else {
            return nil
        }
        guard run(["mount", "-t", "tmpfs", "-o", "size=\(kibibytes)k,mode=0700", "tmpfs", path]) else {
            try? FileManager.default.removeItem(atPath: path)
            return nil
        }
        return SmallFilesystem(path: path)
    }

    /// Whether a tmpfs can be mounted here (root with mount(8) and CAP_SYS_ADMIN).
    public static let available: Bool = {
        guard let fs = mount(kibibytes: 64) else { return false }
        fs.unmount()
        return true
    }()

    /// Unmounts (lazily: stores still open in the test process let go when they are freed).
    public func unmount() {
        _ = Self.run(["umount", "-l", path])
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Fills the filesystem until `leaving` bytes are free; returns the filler's path.
    public func fill(leaving: UInt64) throws -> String {
        let filler = path + "/filler"
        var st = statvfs()
        let free = statvfs(path, &st) == 0 ? UInt64(st.f_bavail) * UInt64(st.f_frsize) : 0
        let size = free > leaving ? Int(free - leaving) : 0
        FileManager.default.createFile(atPath: filler, contents: Data(count: size))
        return filler
    }
}
