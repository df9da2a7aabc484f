internal import CSodium
public import Foundation

/// Incremental BLAKE2b (`crypto_generichash`), the content hash of hocvu. Call ``finalize()`` once.
///
/// Used for batch ids, chunk names, learner ids and the canonical state digest.
public final class Blake2b {
    // crypto_generichash_state is 64-byte aligned in C, so Swift sees it as opaque: allocate it.
    private let raw: UnsafeMutableRawPointer
    private var state: OpaquePointer { OpaquePointer(raw) }
    private let outputLength: Int

    /// Starts a hash producing `outputLength` bytes (16...64).
    public init(outputLength: Int = 32) {
        precondition((16...64).contains(outputLength), "BLAKE2b output must be 16...64 bytes")
        Sodium.ensureInitialized()
        self.outputLength = outputLength
        raw = UnsafeMutableRawPointer.allocate(byteCount: crypto_generichash_statebytes(), alignment: 64)
        crypto_generichash_init(OpaquePointer(raw), nil, 0, outputLength)
    }

    deinit { raw.deallocate() }

    /// Absorbs bytes.
    public func update(_ bytes: some DataProtocol) {
        for region in bytes.regions {
            region.withUnsafeBytes { raw in
                let p = raw.bindMemory(to: UInt8.self)
                _ = crypto_generichash_update(state, p.baseAddress, UInt64(p.count))
            }
        }
    }

    /// Absorbs raw bytes without copying.
    public func update(_ raw: UnsafeRawBufferPointer) {
        let p = raw.bindMemory(to: UInt8.self)
        _ = crypto_generichash_update(state, p.baseAddress, UInt64(p.count))
    }

    /// Finishes the hash.
    public func finalize() -> Data {
        var out = [UInt8](repeating: 0, count: outputLength)
        crypto_generichash_final(state, &out, outputLength)
        return Data(out)
    }

    /// One-shot hash of `bytes`.
    public static func hash(_ bytes: some DataProtocol, outputLength: Int = 32) -> Data {
        let h = Blake2b(outputLength: outputLength)
        h.update(bytes)
        return h.finalize()
    }
}
