public import Foundation

/// A node's identity: its 32-byte Ed25519 public key. Ordered bytewise to break LWW ties.
public struct NodeID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let length = 32
    public let bytes: Data

    public init?(bytes: Data) {
        guard bytes.count == Self.length else { return nil }
        self.bytes = Data(bytes)
    }

    public init?(hex: String) {
        guard let data = Data(hex: hex) else { return nil }
        self.init(bytes: data)
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }

    public var hex: String { bytes.hexString }
    /// Short form for logs: enough to tell nodes apart, never a secret.
    public var description: String { String(hex.prefix(12)) }
}

/// One incarnation of a node's database. A restored or reset database draws a new epoch, so
/// `(origin, seq)` pairs are never reused.
public struct Origin: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let node: NodeID
    public let epoch: UInt64

    public init(node: NodeID, epoch: UInt64) {
        self.node = node
        self.epoch = epoch
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.node, lhs.epoch) < (rhs.node, rhs.epoch)
    }

    public var description: String { "\(node)/\(String(epoch, radix: 16))" }
}

extension Data {
    /// Lower-case hexadecimal.
    public var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(count * 2)
        for byte in self {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses hexadecimal (either case); nil on odd length or a non-hex character.
    public init?(hex: String) {
        let chars = Array(hex.utf8)
        guard chars.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var out = Data(capacity: chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let hi = nibble(chars[i]), let lo = nibble(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        self = out
    }
}
