/// Why bytes could not be decoded. Closed set; each names what was wrong.
public enum DecodeError: Error, Equatable, CustomStringConvertible {
    case truncated(field: String)
    case varintOverflow(field: String)
    case tooLong(field: String, length: Int, limit: Int)
    case invalidUTF8(field: String)
    case unknownKind(UInt8)
    case unknownRole(String)
    case trailingBytes(Int)
    case invalidValue(field: String)
    case nonCanonical(field: String)

    public var description: String {
        switch self {
        case .truncated(let f): "message ends in the middle of \(f)"
        case .varintOverflow(let f): "integer \(f) is longer than 64 bits"
        case .tooLong(let f, let n, let limit): "\(f) is \(n) bytes, limit \(limit)"
        case .invalidUTF8(let f): "\(f) is not valid UTF-8"
        case .unknownKind(let k): "unknown record kind \(k)"
        case .unknownRole(let r): "unknown role \"\(r)\""
        case .trailingBytes(let n): "\(n) unexpected bytes after the last record"
        case .invalidValue(let f): "\(f) has an impossible value"
        case .nonCanonical(let f): "\(f) uses an overlong encoding"
        }
    }
}

/// Appends a compact, deterministic binary form: LEB128 varints and length-prefixed strings.
/// Deterministic bytes matter: a batch is hashed and signed as written.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }

    public mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// Signed values by zig-zag so small negatives stay small.
    public mutating func zigzag(_ v: Int64) { varint(UInt64(bitPattern: (v << 1) ^ (v >> 63))) }

    public mutating func fixed64(_ v: UInt64) {
        withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) }
    }

    /// An identifier: 16 raw bytes when it is 32 lower-case hex digits (learner and certificate ids)
    /// or a lower-case canonical UUID (attempt ids), else its text. One tag byte says which; the
    /// choice is forced by the value, so the encoding stays canonical (and ~20 bytes shorter).
    public mutating func compactID(_ s: String) {
        if let packed = CompactID.pack(s) {
            u8(packed.tag)
            bytes.append(contentsOf: packed.bytes)
        } else {
            u8(CompactID.textTag)
            string(s)
        }
    }

    public mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            varint(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    public mutating func raw(_ b: some Sequence<UInt8>) { bytes.append(contentsOf: b) }
}

/// Reads what ``ByteWriter`` wrote, refusing anything truncated, oversized or malformed.
public struct ByteReader {
    private let bytes: UnsafeRawBufferPointer
    public private(set) var offset = 0

    public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    public var remaining: Int { bytes.count - offset }

    public mutating func u8(_ field: String) throws(DecodeError) -> UInt8 {
        guard offset < bytes.count else { throw .truncated(field: field) }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func varint(_ field: String) throws(DecodeError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try u8(field)
            if shift == 63 && b > 1 { throw .varintOverflow(field: field) }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 {
                // A zero final byte after the first is an overlong encoding: refuse it, so every
                // value has exactly one encoding and signed bytes are canonical (found by fuzzing).
                if b == 0 && shift > 0 { throw .nonCanonical(field: field) }
                return result
            }
            shift += 7
            if shift > 63 { throw .varintOverflow(field: field) }
        }
    }

    public mutating func zigzag(_ field: String) throws(DecodeError) -> Int64 {
        let u = try varint(field)
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    /// A varint that must fit an `Int` within `range`.
    public mutating func int(_ field: String, in range: ClosedRange<Int>) throws(DecodeError) -> Int {
        let v = try zigzag(field)
        guard let i = Int(exactly: v), range.contains(i) else { throw .invalidValue(field: field) }
        return i
    }

    public mutating func fixed64(_ field: String) throws(DecodeError) -> UInt64 {
        guard remaining >= 8 else { throw .truncated(field: field) }
        var v: UInt64 = 0
        for _ in 0..<8 { v = v << 8 | UInt64(bytes[offset]); offset += 1 }
        return v
    }

    public mutating func compactID(_ field: String, limit: Int) throws(DecodeError) -> String {
        let tag = try u8(field)
        switch tag {
        case CompactID.textTag:
            let s = try string(field, limit: limit)
            // Text that could have been packed would give one value two encodings.
            guard CompactID.pack(s) == nil else { throw .nonCanonical(field: field) }
            return s
        case CompactID.hexTag, CompactID.uuidTag:
            guard remaining >= 16 else { throw .truncated(field: field) }
            var raw = [UInt8](repeating: 0, count: 16)
            for i in 0..<16 { raw[i] = try u8(field) }
            return CompactID.unpack(tag: tag, raw)
        default:
            throw .invalidValue(field: field)
        }
    }

    public mutating func string(_ field: String, limit: Int) throws(DecodeError) -> String {
        let n = try varint(field)
        guard n <= UInt64(limit) else { throw .tooLong(field: field, length: Int(clamping: n), limit: limit) }
        let count = Int(n)
        guard remaining >= count else { throw .truncated(field: field) }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count]).bindMemory(to: UInt8.self)
        offset += count
        // Identifiers are ASCII: check that cheaply and skip the (unspecialized, slow) validating path.
        var ascii = true
        for b in slice where b >= 0x80 {
            ascii = false
            break
        }
        if ascii { return String(decoding: slice, as: UTF8.self) }
        guard let s = String(validating: slice, as: UTF8.self) else { throw .invalidUTF8(field: field) }
        return s
    }

    public mutating func raw(_ field: String, count: Int) throws(DecodeError) -> [UInt8] {
        guard remaining >= count else { throw .truncated(field: field) }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }
}

/// The packed forms of identifiers (see ``ByteWriter/compactID(_:)``).
enum CompactID {
    static let textTag: UInt8 = 0
    static let hexTag: UInt8 = 1
    static let uuidTag: UInt8 = 2

    static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: c - 48
        case 97...102: c - 87
        default: nil
        }
    }

    static func pack(_ s: String) -> (tag: UInt8, bytes: [UInt8])? {
        var s = s
        return s.withUTF8 { u -> (UInt8, [UInt8])? in
            let tag: UInt8
            let digits: [UInt8]
            if u.count == 32 {
                tag = hexTag
                digits = Array(u)
            } else if u.count == 36, u[8] == 45, u[13] == 45, u[18] == 45, u[23] == 45 {
                tag = uuidTag
                digits = u.enumerated().filter { ![8, 13, 18, 23].contains($0.offset) }.map(\.element)
            } else {
                return nil
            }
            var out = [UInt8](repeating: 0, count: 16)
            for i in 0..<16 {
                guard let hi = nibble(digits[2 * i]), let lo = nibble(digits[2 * i + 1]) else { return nil }
                out[i] = hi << 4 | lo
            }
            return (tag, out)
        }
    }

    static func unpack(tag: UInt8, _ raw: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(36)
        for (i, b) in raw.enumerated() {
            if tag == uuidTag && (i == 4 || i == 6 || i == 8 || i == 10) { out.append(45) }
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
