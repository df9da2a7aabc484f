/// A last-writer-wins register ordered by (HLC stamp, node id); the value breaks the (impossible
/// for honest nodes) tie of one node writing two values at one stamp, so the join stays a join.
public struct LWWRegister<Value: Comparable & Hashable & Sendable>: Hashable, Sendable {
    public var value: Value
    public var stamp: HLCTimestamp
    public var node: NodeID

    public init(value: Value, stamp: HLCTimestamp, node: NodeID) {
        self.value = value
        self.stamp = stamp
        self.node = node
    }

    /// The other join, for values that may be set once: the earliest write (by stamp, then node;
    /// the larger value on an exact tie). A later claim never moves it, so no replica can take
    /// over a value another set first (docs/crdt-rules.md, "Home commune").
    public func mergedFirstWins(with other: Self) -> Self {
        if (other.stamp, other.node) != (stamp, node) {
            return (other.stamp, other.node) < (stamp, node) ? other : self
        }
        return other.value > value ? other : self
    }

    /// The join: the later write.
    public func merged(with other: Self) -> Self {
        if (other.stamp, other.node) != (stamp, node) {
            return (other.stamp, other.node) > (stamp, node) ? other : self
        }
        return other.value > value ? other : self
    }
}

extension Optional {
    /// Joins two optional CRDT values where `nil` is the bottom element.
    @inlinable
    public func join(_ other: Self, _ merge: (Wrapped, Wrapped) -> Wrapped) -> Self {
        switch (self, other) {
        case (nil, let x), (let x, nil): x
        case (let a?, let b?): merge(a, b)
        }
    }
}

/// `min` where `nil` means "not yet": the earliest non-null time.
@inlinable
public func earliest<T: Comparable>(_ a: T?, _ b: T?) -> T? {
    a.join(b, Swift.min)
}
