public import Foundation
import Sodium
import Merge

/// Content-defined chunking (FastCDC with normalized chunking): boundaries depend on the bytes
/// around them, not on offsets, so inserting bytes mid-file changes only the chunks near the
/// edit and every other chunk keeps its hash — and is not sent again.
///
/// The gear table and the masks are part of the release format: changing them re-chunks every
/// file and makes every site fetch everything once. They are fixed here for format 1.
public struct Chunker: Sendable {
    public static let minimumSize = 64 * 1024
    public static let averageSize = 256 * 1024
    /// A chunk always fits one wire frame.
    public static let maximumSize = 1024 * 1024

    /// 256 pseudo-random 64-bit values: BLAKE2b("hocvu gear v1" ‖ i), first 8 bytes, little-endian.
    static let gear: [UInt64] = (0..<256).map { i in
        let h = Blake2b.hash(Data("hocvu gear v1".utf8) + [UInt8(i)], outputLength: 16)
        return h.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    }
    // Normalized chunking (level 2): harder to cut before the average size, easier after, which
    // narrows the size distribution around 256 KiB. Average 2^18 ⇒ 18 bits ± 2.
    static let maskSmall: UInt64 = mask(bits: 20)
    static let maskLarge: UInt64 = mask(bits: 16)

    /// Spreads `bits` one-bits over the high half of the word (FastCDC's padded masks use the
    /// high bits, which the gear shift has mixed the longest).
    static func mask(bits: Int) -> UInt64 {
        var m: UInt64 = 0
        var placed = 0
        var position = 63
        while placed < bits {
            m |= 1 << UInt64(position)
            placed += 1
            position -= 2
            if position < 0 { position = 62 }
        }
        return m
    }

    public init() {}

    /// The length of the chunk starting at `bytes[0]`.
    public static func cut(_ bytes: UnsafeRawBufferPointer) -> Int {
        let n = bytes.count
        if n <= minimumSize { return n }
        let limit = min(n, maximumSize)
        let normal = min(limit, averageSize)
        var fp: UInt64 = 0
        var i = minimumSize
        let g = gear
        return g.withUnsafeBufferPointer { gear in
            while i < normal {
                fp = (fp << 1) &+ gear[Int(bytes[i])]
                if fp & maskSmall == 0 { return i + 1 }
                i += 1
            }
            while i < limit {
                fp = (fp << 1) &+ gear[Int(bytes[i])]
                if fp & maskLarge == 0 { return i + 1 }
                i += 1
            }
            return limit
        }
    }

    /// Cuts `data` into chunk ranges covering it exactly.
    public static func ranges(_ data: Data) -> [Range<Int>] {
        data.withUnsafeBytes { all in
            var out = [Range<Int>]()
            var start = 0
            while start < all.count {
                let len = cut(UnsafeRawBufferPointer(rebasing: all[start...]))
                out.append(start..<(start + len))
                start += len
            }
            return out
        }
    }

    /// The content hash that names a chunk (BLAKE2b-256), as lowercase hex.
    public static func name(_ bytes: some DataProtocol) -> String { Blake2b.hash(bytes).hexString }
}
