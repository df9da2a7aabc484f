import Foundation
import Logging
import Merge
public import Model
public import Release
public import Store
import Synchronization

/// The installed release as the portal reads it: decoded once per release (a manifest is decoded
/// only when the installed version changes), with lessons, quizzes and files indexed by id.
public struct InstalledCurriculum: Sendable {
    public let manifest: Manifest
    public let lessons: [String: (course: Curriculum.Course, lesson: Curriculum.Lesson)]
    public let quizzes: [String: (course: Curriculum.Course, quiz: Curriculum.Quiz)]
    public let files: [String: Manifest.File]

    init(_ manifest: Manifest) {
        self.manifest = manifest
        var lessons = [String: (Curriculum.Course, Curriculum.Lesson)]()
        var quizzes = [String: (Curriculum.Course, Curriculum.Quiz)]()
        for c in manifest.curriculum.courses {
            for l in c.lessons { lessons[l.id] = (c, l) }
            for q in c.quizzes { quizzes[q.id] = (c, q) }
        }
        self.lessons = lessons
        self.quizzes = quizzes
        files = Dictionary(manifest.files.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
    }

    public func course(_ id: String) -> Curriculum.Course? { manifest.curriculum.courses.first { $0.id == id } }
}

/// Keeps the decoded installed release; a new installed version replaces it. The version is read
/// from the database at most once a second (a release is installed a few times a year; a classroom
/// of fifty asks many times a second), so a new release shows within a second.
final class CurriculumCache: Sendable {
    let store: NodeStore
    private struct Cached {
        var checkedAt: Int64
        var version: UInt64?
        var value: InstalledCurriculum?
        var texts: [String: String] = [:]
    }
    private let cached = Mutex<Cached?>(nil)
    private let clock: @Sendable () -> Int64
    /// Province of each official commune code (compiled in, never changes).
    let provinces: [Int: Int]

    init(store: NodeStore, clock: @escaping @Sendable () -> Int64 = NodeStore.systemNow) {
        self.store = store
        self.clock = clock
        var map = [Int: Int]()
        for p in (try? AdminUnits.bundled().provinces) ?? [] { for c in p.communes { map[c.code] = p.code } }
        provinces = map
    }

    /// The installed release, or nil before the first one is installed.
    func current() throws -> InstalledCurriculum? {
        let now = clock()
        if let hit = cached.withLock({ $0 }), now >= hit.checkedAt, now - hit.checkedAt < 1_000 { return hit.value }
        let version = try store.installedReleaseVersion()
        if let hit = cached.withLock({ $0 }), hit.version == version {
            cached.withLock { $0?.checkedAt = now }
            return hit.value
        }
        var value: InstalledCurriculum?
        if version != nil, let stored = try store.installedRelease() { value = InstalledCurriculum(try Manifest.decode(stored.manifest)) }
        cached.withLock { $0 = Cached(checkedAt: now, version: value?.manifest.version, value: value) }
        return value
    }

    /// A text file of the installed release (a lesson's Markdown), reassembled once per release.
    func text(_ file: Manifest.File, chunks: ChunkStore) throws -> String {
        if let hit = cached.withLock({ $0?.version == nil ? nil : $0?.texts[file.path] }) { return hit }
        let text = String(decoding: try chunks.assemble(file), as: UTF8.self)
        cached.withLock { c in
            // Kept only while the same release is installed, and only small files.
            if c?.value?.files[file.path] == file, file.size <= 1 << 20 { c?.texts[file.path] = text }
        }
        return text
    }
}
