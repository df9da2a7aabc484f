/// One byte range of an HTTP `Range` header (RFC 9110 §14), resolved against a file's size. Pure,
/// so every header a browser or an attacker may send is decided without I/O.
///
/// Only a single range is served: a header asking for several, or one this parser does not
/// understand, is ignored and the whole file is sent (200), as RFC 9110 allows. A range starting
/// at or beyond the end is unsatisfiable (416).
public struct ByteRange: Equatable, Sendable {
    /// First and last byte, inclusive (`last` < the file's size).
    public let first: Int
    public let last: Int
    public var count: Int { last - first + 1 }

    public enum Decision: Equatable, Sendable {
        case whole
        case partial(ByteRange)
        case unsatisfiable
    }

    /// Decides what to send for `header` (nil: no Range header) on a file of `size` bytes.
    public static func decide(_ header: String?, size: Int) -> Decision {
        guard let header else { return .whole }
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        guard trimmed.lowercased().hasPrefix("bytes=") else { return .whole }
        let spec = trimmed.dropFirst("bytes=".count).trimmingCharacters(in: .whitespaces)
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return .whole }
        let a = spec[..<dash].trimmingCharacters(in: .whitespaces), b = spec[spec.index(after: dash)...].trimmingCharacters(in: .whitespaces)
        func number(_ s: String) -> Int? {
            // At most 18 digits: a larger number cannot be a position and must not overflow.
            guard !s.isEmpty, s.utf8.count <= 18, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            return Int(s)
        }
        if a.isEmpty {
            // A suffix: the last N bytes.
            guard let n = number(b) else { return .whole }
            guard n > 0, size > 0 else { return .unsatisfiable }
            return .partial(ByteRange(first: max(0, size - n), last: size - 1))
        }
        guard let first = number(a) else { return .whole }
        let last: Int
        if b.isEmpty {
            last = size - 1
        } else {
            guard let l = number(b) else { return .whole }
            guard l >= first else { return .whole }  // invalid: ignored, as RFC 9110 says
            last = min(l, size - 1)
        }
        guard first < size else { return .unsatisfiable }
        return .partial(ByteRange(first: first, last: last))
    }
}

import Foundation
import Logging
import Merge
