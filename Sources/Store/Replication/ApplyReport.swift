public import Merge

/// What applying remote batches did. Returned after the transaction committed: only then may
/// the caller acknowledge.
public struct ApplyReport: Equatable, Sendable {
    public struct Refused: Equatable, Sendable {
        public let origin: Origin
        public let firstSeq: UInt64
        public let reason: BatchRefusal
        public init(origin: Origin, firstSeq: UInt64, reason: BatchRefusal) {
            self.origin = origin
            self.firstSeq = firstSeq
            self.reason = reason
        }
    }

    public var appliedBatches = 0
    public var duplicateBatches = 0
    public var mergedChanges = 0
    public var quarantinedChanges = 0
    public var refused: [Refused] = []
    /// Origins newly quarantined in this call (equivocation, broken hash chain): raise an alert.
    public var newlyQuarantinedOrigins: [Origin] = []
    /// Hub: communes whose home feed grew in this call (send them the new entries).
    public var fedCommunes: Set<Int> = []
    /// Learner changes that claimed a home commune other than the one already held, by origin
    /// (merged by the first-claim rule; counted and reported, never silent).
    public var contestedHomeClaims: [Origin] = []

    public init() {}
}
