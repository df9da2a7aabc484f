/// What a node knows: for each origin, the highest sequence number below which it has every change.
public struct VersionVector: Hashable, Sendable {
    public private(set) var entries: [Origin: UInt64]

    public init(_ entries: [Origin: UInt64] = [:]) {
        self.entries = entries.filter { $0.value > 0 }
    }

    public subscript(origin: Origin) -> UInt64 {
        get { entries[origin] ?? 0 }
        set { entries[origin] = newValue == 0 ? nil : newValue }
    }

    /// True when this vector has seen everything `other` has.
    public func dominates(_ other: VersionVector) -> Bool {
        other.entries.allSatisfy { self[$0.key] >= $0.value }
    }

    /// The entries of one node's origins (all its epochs).
    public func restricted(to node: NodeID) -> VersionVector {
        VersionVector(entries.filter { $0.key.node == node })
    }

    /// Pointwise maximum (the join of version vectors).
    public func merged(with other: VersionVector) -> VersionVector {
        var out = self
        for (origin, seq) in other.entries where seq > out[origin] { out[origin] = seq }
        return out
    }
}

extension VersionVector: CustomStringConvertible {
    /// `{origin:seq, …}` in origin order: short enough for a debug log line.
    public var description: String {
        "{" + entries.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ", ") + "}"
    }
}
