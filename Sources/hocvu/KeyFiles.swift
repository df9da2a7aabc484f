import ArgumentParser
import Foundation
import Merge
import Sodium
import Store
#if canImport(CDispatch)
// Glibc's `struct stat` is owned by CDispatch once swift-nio and UnixSignals are linked in; with
// MemberImportVisibility a release (whole-module) build then needs that module imported here.
import CDispatch
#endif

/// A node's two key pairs on disk: `identity.key` (Ed25519, signs batches) and `transport.key`
/// (X25519, CURVE), each the hex secret key in a file of mode 0600.
struct KeyFiles {
    let identity: SigningKeyPair
    let transport: BoxKeyPair

    static func generate(into dir: String, force: Bool) throws -> KeyFiles {
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        for name in ["identity.key", "transport.key"] where fm.fileExists(atPath: "\(dir)/\(name)") && !force {
            throw Failure("\(dir)/\(name) exists; refusing to overwrite a key (use --force to replace it, and re-enroll)")
        }
        let keys = KeyFiles(identity: .generate(), transport: .generate())
        try write(keys.identity.secretKey, to: "\(dir)/identity.key")
        try write(keys.transport.secretKey, to: "\(dir)/transport.key")
        return keys
    }

    static func load(from dir: String) throws -> KeyFiles {
        KeyFiles(
            identity: try SigningKeyPair(secretKey: read("\(dir)/identity.key", bytes: 64)),
            transport: try BoxKeyPair(secretKey: read("\(dir)/transport.key", bytes: 32)))
    }

    private static func write(_ secret: Data, to path: String) throws {
        // Create with 0600 from the start: never a moment where the secret is world-readable.
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw Failure("cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        fchmod(fd, 0o600)
        let text = Array((secret.hexString + "\n").utf8)
        guard Foundation.write(fd, text, text.count) == text.count, fsync(fd) == 0 else {
            throw Failure("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    private static func read(_ path: String, bytes: Int) throws -> Data {
        let text = try readSecret(path)
        guard let data = Data(hex: text.trimmingCharacters(in: .whitespacesAndNewlines)), data.count == bytes else {
            throw Failure("\(path) is not a hocvu key file (expected \(bytes * 2) hex characters)")
        }
        return data
    }

    /// Why `path` may not be used as a secret key file, or nil when it may: it must exist, be
    /// readable by this user, and be private to its owner (no group or other permission bits),
    /// as ssh requires of its private keys.
    static func problem(with path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let code = errno
            if code == ENOENT {
                return "there is no key file at \(path); create keys with `hocvu keygen --dir \((path as NSString).deletingLastPathComponent)`"
            }
            if code == EACCES { return permissionDenied(path, owner: nearestOwner(of: path)) }
            return "cannot read \(path): \(String(cString: strerror(code)))"
        }
        let owner = FileOwner.of(path)
        if access(path, R_OK) != 0, errno == EACCES { return permissionDenied(path, owner: owner) }
        let mode = UInt32(st.st_mode) & 0o777
        if mode & 0o077 != 0 {
            return "\(path) is readable by group or others (mode 0\(String(mode, radix: 8))): a secret key must be private to "
                + "its owner\(owner.map { " (\($0.name))" } ?? ""). Fix it with: chmod 600 \(path)"
                + " — and if others may have read it, make new keys (`hocvu keygen --force`) and enroll again"
        }
        return nil
    }

    private static func readSecret(_ path: String) throws -> String {
        if let problem = problem(with: path) { throw Failure(problem) }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw Failure("cannot read \(path) as text: \(String(cString: strerror(errno)))")
        }
        return text
    }

    static func permissionDenied(_ path: String, owner: FileOwner?) -> String {
        let me = FileOwner.currentUser.name
        guard let owner else { return "permission denied: \(me) may not read \(path)" }
        return "permission denied: \(me) may not read \(path) (\(owner)); run the command as \(owner.name), e.g. sudo -u \(owner.name) hocvu …"
    }

    static func nearestOwner(of path: String) -> FileOwner? {
        var dir = (path as NSString).deletingLastPathComponent
        while !dir.isEmpty {
            if let o = FileOwner.of(dir) { return o }
            if dir == "/" { break }
            dir = (dir as NSString).deletingLastPathComponent
        }
        return nil
    }

    var publicText: String {
        """
        identity  \(identity.publicKey.hexString)
        transport \(transport.publicKey.hexString)
        """
    }
}

/// Parses a 32-byte public key given in hex; nil when it is not one.
func publicKey(hex: String) -> Data? {
    guard let d = Data(hex: hex.trimmingCharacters(in: .whitespaces)), d.count == 32 else { return nil }
    return d
}

/// Parses a 32-byte public key given in hex as the command-line option `name`: a malformed one is a
/// usage error (exit 64, with the usage text). Call it from `validate()`, before any file is touched.
func publicKey(_ hex: String, option name: String) throws -> Data {
    guard let d = publicKey(hex: hex) else {
        throw ValidationError("\(name) must be 64 hex characters, as printed by `hocvu keygen`")
    }
    return d
}
