import Foundation

/// Time-ordered record identifiers (UUIDv7, RFC 9562): inserts land at the end of the B-tree.
public enum RecordID {
    /// A UUIDv7 string for time `milliseconds`, with `rng` supplying the 74 random bits.
    public static func uuidV7(milliseconds: UInt64, using rng: inout some RandomNumberGenerator) -> String {
        var b = [UInt8](repeating: 0, count: 16)
        for i in 0..<6 { b[i] = UInt8(truncatingIfNeeded: milliseconds >> (8 * (5 - i))) }
        let r1 = rng.next(), r2 = rng.next()
        for i in 6..<16 { b[i] = UInt8(truncatingIfNeeded: (i < 11 ? r1 : r2) >> (8 * (i % 8))) }
        b[6] = 0x70 | (b[6] & 0x0F)
        b[8] = 0x80 | (b[8] & 0x3F)
        let hex = Data(b).hexString
        let c = Array(hex)
        return String(c[0..<8]) + "-" + String(c[8..<12]) + "-" + String(c[12..<16]) + "-"
            + String(c[16..<20]) + "-" + String(c[20..<32])
    }

    /// True when `s` is a lower-case UUIDv7 string.
    public static func isUUIDv7(_ s: String) -> Bool {
        var s = s
        return s.withUTF8 { u in
            guard u.count == 36 else { return false }
            for i in 0..<36 {
                let c = u[i]
                if i == 8 || i == 13 || i == 18 || i == 23 {
                    guard c == UInt8(ascii: "-") else { return false }
                } else {
                    guard (c >= 48 && c <= 57) || (c >= 97 && c <= 102) else { return false }
                }
            }
            let variant = u[19]
            return u[14] == UInt8(ascii: "7")
                && (variant == UInt8(ascii: "8") || variant == UInt8(ascii: "9") || variant == UInt8(ascii: "a")
                    || variant == UInt8(ascii: "b"))
        }
    }
}
