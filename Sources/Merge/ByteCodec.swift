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
