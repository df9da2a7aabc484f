import Foundation
import Merge
import Model
import Sodium
import Store
import Synchronization
import TestSupport

/// A controllable clock for a store: tests move time by hand.
final class TestClock: Sendable {
    private let ms = Mutex<Int64>(1_767_225_600_000)  // 2026-01-01T00:00:00Z
    var now: Int64 { ms.withLock { $0 } }
    func advance(_ delta: Int64) { ms.withLock { $0 += delta } }
    var function: @Sendable () -> Int64 { { [self] in self.now } }
}

/// One node's file-backed store with its own key, in its own temporary directory.
struct Replica {
    let dir: TemporaryDirectory
    let key: SigningKeyPair
    let clock: TestClock
    let store: NodeStore

    init(curriculum: Curriculum? = SampleCurriculum.make(), clock: TestClock = TestClock(), key: SigningKeyPair = .generate())
        throws
    {
        dir = try TemporaryDirectory(prefix: "hocvu-store")
        self.key = key
        self.clock = clock
        store = try NodeStore(path: dir.file("node.sqlite"), identity: key, now: clock.function)
        if let curriculum { try store.installCurriculum(curriculum) }
    }

    func reopen() throws -> NodeStore {
        try NodeStore(path: dir.file("node.sqlite"), identity: key, now: clock.function)
    }
}

/// National IDs shaped like VNeID numbers; a small pool so that the same person turns up at
/// several communes.
func nationalID(_ i: Int) -> String { String(format: "0012%08d", i) }

extension NodeStore {
    /// Registers a learner and returns their id.
    func register(_ i: Int, commune: Int = 70, role: Role = .civilServant, name: String = "Nguyễn Văn A") throws -> String {
        let out = try record([.registerLearner(nationalID: nationalID(i), fullName: name, role: role, unit: "UBND", homeCommune: commune)])
        guard case .learner(let id) = out[0] else { fatalError("unexpected outcome") }
        return id
    }
}

/// A remote node that is not a store: signs batches by hand, for hostile and forged input.
struct RemoteSigner {
    let key = SigningKeyPair.generate()
    let epoch: UInt64 = 7
    var origin: Origin { Origin(node: NodeID(bytes: key.publicKey)!, epoch: epoch) }

    func batch(_ changes: [Change], first: UInt64 = 1, previous: Data = Batch.zeroID) -> Batch {
        Batch.seal(changes: changes, origin: origin, firstSeq: first, previousID: previous, signer: key)
    }
}
