public import Foundation
public import Merge

/// One entry of a site's home feed.
public struct HomeFeedEntry: Sendable, Equatable {
    public var seq: UInt64
    /// The site that recorded the change (its LWW tie-break travels with it).
    public var node: NodeID
    public var change: Data
    public init(seq: UInt64, node: NodeID, change: Data) { self.seq = seq; self.node = node; self.change = change }
}
