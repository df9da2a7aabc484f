internal import CSodium
public import Foundation

/// Password hashing for the hub dashboard's accounts: libsodium's `crypto_pwhash_str` (Argon2id,
/// libsodium's default algorithm since 1.0.15), whose output string carries its own salt and costs,
/// so a stored hash verifies even after the costs are raised for new ones.
public enum PasswordHash {
    /// Longest password accepted, in UTF-8 bytes: a bound on what a request can make us hash.
    public static let maxPasswordBytes = 1_024

    /// Hashes `password` with Argon2id at libsodium's "interactive" costs (about 0.1–0.3 s and
    /// 64 MiB on a hub-class machine: a sign-in, not a bulk operation).
    ///
    /// - Returns: the encoded hash (`$argon2id$v=19$m=…`), nil if libsodium could not allocate the
    ///   memory or the password is longer than ``maxPasswordBytes``.
    public static func hash(_ password: String) -> String? {
        Sodium.ensureInitialized()
        let bytes = Array(password.utf8)
        guard bytes.count <= maxPasswordBytes else { return nil }
        var out = [CChar](repeating: 0, count: crypto_pwhash_strbytes())
        // A trailing NUL keeps the pointer valid for an empty password; the length excludes it.
        let chars = bytes.map(CChar.init(bitPattern:)) + [0]
        let rc = crypto_pwhash_str(
            &out, chars, UInt64(bytes.count), UInt64(crypto_pwhash_opslimit_interactive()), crypto_pwhash_memlimit_interactive())
        guard rc == 0 else { return nil }
        return String(cString: out)
    }

    /// True when `password` matches `encoded` (a ``hash(_:)`` result). A malformed `encoded`
    /// string, or one of another algorithm, is false — never a trap.
    public static func verify(_ password: String, against encoded: String) -> Bool {
        Sodium.ensureInitialized()
        let bytes = Array(password.utf8)
        guard bytes.count <= maxPasswordBytes, encoded.utf8.count < crypto_pwhash_strbytes() else { return false }
        var stored = [CChar](repeating: 0, count: crypto_pwhash_strbytes())
        for (i, b) in encoded.utf8.enumerated() { stored[i] = CChar(bitPattern: b) }
        let chars = bytes.map(CChar.init(bitPattern:)) + [0]
        return crypto_pwhash_str_verify(&stored, chars, UInt64(bytes.count)) == 0
    }
}

extension Sodium {
    /// Compares two byte strings in time that depends only on their lengths (`sodium_memcmp`), for
    /// secrets such as session and CSRF tokens: an early exit would tell an attacker how many
    /// leading bytes they guessed right.
    public static func constantTimeEquals(_ a: some DataProtocol, _ b: some DataProtocol) -> Bool {
        ensureInitialized()
        let x = [UInt8](a), y = [UInt8](b)
        guard x.count == y.count else { return false }
        if x.isEmpty { return true }
        return sodium_memcmp(x, y, x.count) == 0
    }
}
