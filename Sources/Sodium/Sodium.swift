internal import CSodium
public import Foundation

/// Thin Swift face of libsodium: the only module that imports `CSodium`.
///
/// `sodium_init()` is idempotent and thread-safe; every entry point calls ``ensureInitialized()``
/// so callers never have to remember it.
public enum Sodium {
    /// Initializes libsodium once. Safe to call from any thread, any number of times.
    public static func ensureInitialized() {
        _ = initialized
    }

    private static let initialized: Bool = {
        // sodium_init returns 0 on success, 1 if already initialized, -1 on failure.
        precondition(sodium_init() >= 0, "libsodium failed to initialize")
        return true
    }()

    /// Fills a buffer of `count` bytes from the OS CSPRNG.
    public static func randomBytes(_ count: Int) -> Data {
        ensureInitialized()
        var out = Data(count: count)
        out.withUnsafeMutableBytes { randombytes_buf($0.baseAddress!, count) }
        return out
    }

    /// A uniformly random 64-bit value (used for database epochs and jitter).
    public static func randomUInt64() -> UInt64 {
        randomBytes(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    }
}
