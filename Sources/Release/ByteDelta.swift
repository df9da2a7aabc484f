public import Foundation

/// A transfer encoding of a byte string as copies from bytes the receiver already holds plus
/// literal bytes: how a small edit to a release costs about the changed bytes rather than whole
/// chunks and a whole manifest.
///
/// The hub, which holds both releases, encodes a new chunk against the chunks it replaced (and
/// a new manifest against the one the site has installed); the site decodes it from its own
/// chunk files and then verifies the result exactly as if the bytes had come whole — the
/// chunk's BLAKE2b-256 name and its size, the manifest's k-of-n signatures. A delta is never
/// trusted: it only ever produces candidate bytes.
///
/// Format (all integers are LEB128 varints, at most 10 bytes):
///
///     0x01                      format
///     target size
///     op*                       until the end of the bytes
///       0x00 length bytes…      literal: `length` bytes follow
///       0x01 base offset length copy `length` bytes of base `base` at `offset`
///       0x02 length nibbles…    `length` lower-case hex digits (`0-9a-f`), packed two per byte,
///                               high nibble first: the chunk names a manifest lists cost half
///
/// Every field is range-checked while decoding (base index, offset + length within that base,
/// output within the declared size, declared size within the caller's limit); nothing traps
/// on peer input.
public enum ByteDelta {
    static let format: UInt8 = 1
    /// Bytes compared at once when looking for a match (shorter repeats are sent as literals).
    static let block = 32

    public enum DecodeError: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        case sizeMismatch(declared: Int, produced: Int)
        public var description: String {
            switch self {
            case .malformed(let why): "the delta is malformed: \(why)"
            case .sizeMismatch(let d, let p): "the delta declares \(d) bytes but produces \(p)"
            }
        }
    }

    // MARK: Decoding (peer input)

    /// Rebuilds the target bytes from `delta` and the `bases` the receiver holds.
    /// - Parameter maxSize: the largest target the caller accepts (a chunk: 1 MiB).
    public static func apply(_ delta: Data, bases: [Data], maxSize: Int) throws(DecodeError) -> Data {
        var reader = Reader(delta)
        guard let f = reader.byte(), f == format else { throw .malformed("unknown format") }
        guard maxSize >= 0, let declared = reader.varint(), declared <= UInt64(maxSize) else { throw .malformed("target size missing or above \(maxSize)") }
        let size = Int(declared)
        var out = Data(capacity: size)
        while !reader.atEnd {
            guard let op = reader.byte() else { throw .malformed("truncated op") }
            switch op {
            case 0:
                guard let n = reader.varint(), n <= UInt64(size - out.count) else { throw .malformed("literal beyond the target size") }
                guard let bytes = reader.bytes(Int(n)) else { throw .malformed("truncated literal") }
                out.append(bytes)
            case 1:
                guard let b = reader.varint(), b < UInt64(bases.count) else { throw .malformed("copy from an unknown base") }
                let base = bases[Int(b)]
                guard let off = reader.varint(), let n = reader.varint() else { throw .malformed("truncated copy") }
                // Both bounded by the base's count before any arithmetic: no overflow.
                guard off <= UInt64(base.count), n <= UInt64(base.count) - off else { throw .malformed("copy beyond its base") }
                guard n <= UInt64(size - out.count) else { throw .malformed("copy beyond the target size") }
                let start = base.startIndex + Int(off)
                out.append(base[start..<(start + Int(n))])
            case 2:
                guard let n = reader.varint(), n <= UInt64(size - out.count) else { throw .malformed("hex literal beyond the target size") }
                let digits = Int(n)
                guard let packed = reader.bytes((digits + 1) / 2) else { throw .malformed("truncated hex literal") }
                let hex = Array("0123456789abcdef".utf8)
                var k = 0
                for byte in packed {
                    out.append(hex[Int(byte >> 4)])
                    k += 1
                    if k < digits { out.append(hex[Int(byte & 0x0F)]); k += 1 }
                }
            default:
                throw .malformed("unknown op \(op)")
            }
        }
        guard out.count == size else { throw .sizeMismatch(declared: size, produced: out.count) }
        return out
    }

    struct Reader {
        let data: Data
        var i: Int
        init(_ d: Data) { data = d; i = d.startIndex }
        var atEnd: Bool { i >= data.endIndex }
        mutating func byte() -> UInt8? {
            guard i < data.endIndex else { return nil }
            defer { i += 1 }
            return data[i]
        }
        mutating func varint() -> UInt64? {
            var v: UInt64 = 0
            for shift in stride(from: 0, to: 70, by: 7) {
                guard let b = byte() else { return nil }
                if shift == 63 && b > 1 { return nil }  // more than 64 bits
                v |= UInt64(b & 0x7F) << UInt64(shift)
                if b & 0x80 == 0 { return v }
            }
            return nil
        }
        mutating func bytes(_ n: Int) -> Data? {
            guard n <= data.endIndex - i else { return nil }
            defer { i += n }
            return data[i..<(i + n)]
        }
    }

    // MARK: Encoding (the hub's own bytes)

    /// Encodes `target` as copies from `bases` and literals. Matches of at least ``block`` bytes
    /// aligned to ``block`` in a base are found, then extended both ways byte by byte.
    public static func encode(_ target: Data, bases: [Data]) -> Data {
        var out = Data([format])
        putVarint(&out, UInt64(target.count))
        let index = BlockIndex(bases)
        target.withUnsafeBytes { (t: UnsafeRawBufferPointer) -> Void in
            let n = t.count
            var literalStart = 0
            var i = 0
            var h: UInt64 = 0
            var hashedUpTo = 0  // h covers t[i ..< i + block] once hashedUpTo == i + block
            func flushLiteral(to end: Int) {
                guard end > literalStart else { return }
                ByteDelta.putLiteral(&out, UnsafeRawBufferPointer(rebasing: t[literalStart..<end]))
            }
            while i + block <= n {
                if hashedUpTo != i + block {
                    h = RollingHash.of(UnsafeRawBufferPointer(rebasing: t[i..<(i + block)]))
                    hashedUpTo = i + block
                }
                if let (b, off) = index.find(h, t, at: i, bases: bases) {
                    // Extend backwards into the pending literal, then forwards.
                    var s = i, bs = off
                    let bc = bases[b].count
                    var e = i + block, be = off + block
                    bases[b].withUnsafeBytes { (base: UnsafeRawBufferPointer) -> Void in
                        while s > literalStart, bs > 0, t[s - 1] == base[bs - 1] { s -= 1; bs -= 1 }
                        while e < n, be < bc, t[e] == base[be] { e += 1; be += 1 }
                    }
                    flushLiteral(to: s)
                    out.append(1)
                    putVarint(&out, UInt64(b))
                    putVarint(&out, UInt64(bs))
                    putVarint(&out, UInt64(e - s))
                    i = e
                    literalStart = e
                    continue
                }
                if i + block < n { h = RollingHash.roll(h, out: t[i], in: t[i + block]); hashedUpTo = i + 1 + block }
                i += 1
            }
            flushLiteral(to: n)
        }
        return out
    }

    /// Literal bytes: runs of at least 16 lower-case hex digits packed (op 2), the rest as is (op 0).
    static func putLiteral(_ out: inout Data, _ bytes: UnsafeRawBufferPointer) {
        func isHex(_ b: UInt8) -> Bool { (0x30...0x39).contains(b) || (0x61...0x66).contains(b) }
        func nibble(_ b: UInt8) -> UInt8 { b <= 0x39 ? b - 0x30 : b - 0x61 + 10 }
        var plainStart = 0
        var i = 0
        let n = bytes.count
        while i < n {
            guard isHex(bytes[i]) else { i += 1; continue }
            var j = i
            while j < n, isHex(bytes[j]) { j += 1 }
            if j - i >= 16 {
                if i > plainStart {
                    out.append(0)
                    putVarint(&out, UInt64(i - plainStart))
                    out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[plainStart..<i]))
                }
                out.append(2)
                putVarint(&out, UInt64(j - i))
                var k = i
                while k < j {
                    let high = nibble(bytes[k]) << 4
                    out.append(k + 1 < j ? high | nibble(bytes[k + 1]) : high)
                    k += 2
                }
                plainStart = j
            }
            i = j
        }
        if n > plainStart {
            out.append(0)
            putVarint(&out, UInt64(n - plainStart))
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[plainStart..<n]))
        }
    }

    static func putVarint(_ out: inout Data, _ value: UInt64) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    /// A polynomial rolling hash over ``ByteDelta/block`` bytes (arithmetic mod 2^64).
    enum RollingHash {
        static let p: UInt64 = 0x100000001B3
        /// p^(block-1), to take the outgoing byte out.
        static let top: UInt64 = (1..<block).reduce(UInt64(1)) { a, _ in a &* p }
        static func of(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
            var h: UInt64 = 0
            for b in bytes { h = h &* p &+ UInt64(b) &+ 1 }
            return h
        }
        static func roll(_ h: UInt64, out: UInt8, in new: UInt8) -> UInt64 {
            (h &- (UInt64(out) &+ 1) &* top) &* p &+ UInt64(new) &+ 1
        }
    }

    /// Block-aligned positions of the bases by rolling hash: an open-addressing table (power of
    /// two slots, linear probing) of (hash, base, offset).
    struct BlockIndex {
        private var keys: [UInt64]
        private var values: [(base: Int32, offset: Int32)]
        private let mask: Int

        init(_ bases: [Data]) {
            let blocks = bases.reduce(0) { $0 + $1.count / block }
            var slots = 16
            while slots < blocks * 2 { slots <<= 1 }
            mask = slots - 1
            keys = [UInt64](repeating: 0, count: slots)
            values = Array(repeating: (base: Int32(-1), offset: Int32(0)), count: slots)
            for (b, data) in bases.enumerated() {
                data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Void in
                    var off = 0
                    while off + block <= raw.count {
                        let h = RollingHash.of(UnsafeRawBufferPointer(rebasing: raw[off..<(off + block)]))
                        var s = Int(truncatingIfNeeded: (h &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
                        while values[s].base >= 0 && keys[s] != h { s = (s + 1) & mask }
                        if values[s].base < 0 { keys[s] = h; values[s] = (Int32(b), Int32(off)) }  // first wins
                        off += block
                    }
                }
            }
        }

        /// A base position whose block equals `t[at ..< at + block]`, if any.
        func find(_ h: UInt64, _ t: UnsafeRawBufferPointer, at: Int, bases: [Data]) -> (Int, Int)? {
            var s = Int(truncatingIfNeeded: (h &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
            while values[s].base >= 0 {
                if keys[s] == h {
                    let (b, off) = (Int(values[s].base), Int(values[s].offset))
                    let same = bases[b].withUnsafeBytes { (base: UnsafeRawBufferPointer) -> Bool in
                        memcmp(base.baseAddress! + off, t.baseAddress! + at, block) == 0
                    }
                    return same ? (b, off) : nil
                }
                s = (s + 1) & mask
            }
            return nil
        }
    }
}
