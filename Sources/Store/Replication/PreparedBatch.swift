import Dispatch
public import Foundation
public import Merge
public import Model
import Sodium
import Synchronization

/// A batch with the work that needs no database done: its id, its signature check, its
/// decoded changes. Public so a hub on a shared log checks a batch once, for the log and its store.
public struct PreparedBatch: Sendable {
    public let batch: Batch
    public let id: Data
    public let signatureValid: Bool
    let changes: Result<[Change], DecodeError>
    /// The body decodes, but to another number of changes than the signed range says.
    public let countMismatch: Bool

    init(_ batch: Batch, localOrigin: Origin) {
        self.batch = batch
        let header = batch.header
        id = Blake2b.hash(header)
        signatureValid = batch.origin == localOrigin
            || Ed25519.verify(signature: batch.signature, message: header, publicKey: batch.origin.node.bytes)
        changes = Result { () throws(DecodeError) -> [Change] in try ChangeCodec.decode(batch.body) }
        if case .success(let decoded) = changes { countMismatch = decoded.count != batch.changeCount } else { countMismatch = false }
    }

    /// Prepares batches concurrently; results keep the input order.
    public static func prepareAll(_ batches: [Batch], localOrigin: Origin) -> [PreparedBatch] {
        guard batches.count > 1 else { return batches.map { PreparedBatch($0, localOrigin: localOrigin) } }
        let slots = Mutex([PreparedBatch?](repeating: nil, count: batches.count))
        DispatchQueue.concurrentPerform(iterations: batches.count) { i in
            let p = PreparedBatch(batches[i], localOrigin: localOrigin)
            slots.withLock { $0[i] = p }
        }
        return slots.withLock { $0.map { $0! } }
    }
}
