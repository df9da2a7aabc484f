import Store
import Synchronization

/// When an engine's loop last went round. Each loop beats at least once a second unless wedged
/// (a stuck commit, a hung disk), so the watchdog pings only while the beat is fresh.
final class LoopHeartbeat: Sendable {
    private let last = Atomic<Int64>(0)

    func beat() { last.store(NodeStore.systemNow(), ordering: .relaxed) }

    var isFresh: Bool { NodeStore.systemNow() - last.load(ordering: .relaxed) < 10_000 }
}
