import CMalloc
import Foundation

/// The process's heap, set deliberately (BENCHMARKS.md, "Idle site"; docs/operations.md, "Memory").
///
/// glibc gives every thread that allocates an arena of its own, up to 8 per core; each keeps the
/// memory freed into it. A site daemon has a dozen threads (libzmq, Dispatch, NIO for metrics and
/// the portal, its sync loop), so freed memory ends up spread over many arenas that never shrink.
/// One arena per core is what the parallel parts (a hub preparing batches on every core) need.
enum ProcessMemory {
    /// Caps glibc's malloc arenas at one per core (at least 2), unless the operator set
    /// `MALLOC_ARENA_MAX` (read by glibc itself). Called first thing in `main`, before any other
    /// thread exists: arenas already made are kept.
    static func limitArenas() {
        guard ProcessInfo.processInfo.environment["MALLOC_ARENA_MAX"] == nil else { return }
        _ = mallopt(M_ARENA_MAX, Int32(max(2, ProcessInfo.processInfo.activeProcessorCount)))
    }

    /// Hands freed heap memory back to the kernel (glibc keeps it otherwise, in the middle of an
    /// arena as at its top).
    static func trim() { _ = malloc_trim(0) }
}
