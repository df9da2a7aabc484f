public import Foundation
public import Merge
public import Model
public import Store

/// The state several hub processes share (docs/multi-hub.md), behind one protocol so the engine
/// needs no database driver: the signed batch log with each origin's watermark, chain and
/// quarantine (the acknowledgement point: a batch is acknowledged only once the log committed it),
/// and the enrollments. Each hub keeps its merged records, facts, totals and home feeds in its own
/// ``NodeStore``, a view it derives from the log (CRDT merges: any order gives the same state).
///
/// The engine calls these from its own thread; an implementation blocks until done or throws
/// ``SharedLogError`` (the database cannot be reached: nothing is acknowledged).
public protocol SharedHubLog: Sendable {
    /// Appends what extends each origin's chain, in one transaction, deciding each batch with
    /// ``BatchAdmission`` under the origin's row lock. - Returns: one decision per batch, in order.
    func append(_ batches: [PreparedBatch]) throws -> [BatchAdmission]
    /// The log's contiguous run for each origin of these nodes.
    func versionVector(of nodes: Set<NodeID>) throws -> VersionVector
    /// What a WELCOME tells a site: its origins' runs and their last batch ids, read in one
    /// statement (read apart, another hub's commit between them would look like a restored site).
    func welcomeState(of node: NodeID) throws -> (have: VersionVector, lastIDs: [Origin: Data])
    /// Every origin's contiguous run: what a view compares with its own to follow the log.
    func heads() throws -> VersionVector
    /// An origin's batches after `seq`, in order, at most `limit`.
    func batches(of origin: Origin, after seq: UInt64, limit: Int) throws -> [Batch]
    /// Changes whenever an enrollment is added or revoked (read often, so it is one small row).
    func enrollmentVersion() throws -> Int64
    func enrollments() throws -> [Enrollment]
}

/// Why the shared log could not be used. The engine answers uploads BUSY meanwhile.
public struct SharedLogError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
