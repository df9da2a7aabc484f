import Synchronization

/// The end of an engine's loop, awaitable: the loop's thread calls ``finish()`` as it ends, and
/// every task waiting in ``wait()`` resumes — the daemon's service needs no polling to learn it.
final class EngineCompletion: Sendable {
    private struct State {
        var done = false
        var nextID = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    }
    private let state = Mutex(State())

    /// Marks the loop as ended and resumes every waiter; later waiters return at once.
    func finish() {
        let waiters = state.withLock { s in
            s.done = true
            defer { s.waiters = [:] }
            return s.waiters.values
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once ``finish()`` has been called (at once if it already was), or when the
    /// calling task is cancelled.
    func wait() async {
        let id = state.withLock { s in
            defer { s.nextID += 1 }
            return s.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s in
                    if s.done || Task.isCancelled { return true }
                    s.waiters[id] = c
                    return false
                }
                if now { c.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}
