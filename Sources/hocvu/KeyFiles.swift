import ArgumentParser
import Foundation
import Merge
import Sodium

/// A node's two key pairs on disk: `identity.key` (Ed25519, signs batches) and `transport.key`
/// (X25519, CURVE), each the hex secret key in a file of mode 0600.
struct KeyFiles {
    let identity: SigningKeyPair
    let transport: BoxKeyPair

    static func generate(into dir: String, force: Bool) throws -> KeyFiles {
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        for name in ["identity.key", "transport.key"] where fm.fileExists(atPath: "\(dir)/\(name)") && !force {
            throw ValidationError("\(dir)/\(name) exists; refusing to overwrite a key (use --force to replace it, and re-enroll)")
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
        guard fd >= 0 else { throw ValidationError("cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        fchmod(fd, 0o600)
        let text = Array((secret.hexString + "\n").utf8)
        guard Foundation.write(fd, text, text.count) == text.count, fsync(fd) == 0 else {
            throw ValidationError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    private static func read(_ path: String, bytes: Int) throws -> Data {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ValidationError("cannot read key file \(path); create keys with `hocvu keygen --dir \((path as NSString).deletingLastPathComponent)`")
        }
        guard let data = Data(hex: text.trimmingCharacters(in: .whitespacesAndNewlines)), data.count == bytes else {
            throw ValidationError("\(path) is not a hocvu key file (expected \(bytes * 2) hex characters)")
        }
        return data
    }

    var publicText: String {
        """
        identity  \(identity.publicKey.hexString)
        transport \(transport.publicKey.hexString)
        """
    }
}

/// Parses a 32-byte public key given in hex on the command line.
func publicKey(_ hex: String, name: String) throws -> Data {
    guard let d = Data(hex: hex.trimmingCharacters(in: .whitespaces)), d.count == 32 else {
        throw ValidationError("\(name) must be 64 hex characters, as printed by `hocvu keygen`")
    }
    return d
}
