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

/// Keeps the decoded installed release; a new installed version replaces it at the next request.
final class CurriculumCache: Sendable {
    let store: NodeStore
    private let cached = Mutex<(version: UInt64, value: InstalledCurriculum)?>(nil)

    init(store: NodeStore) { self.store = store }

    /// The installed release, or nil before the first one is installed.
    func current() throws -> InstalledCurriculum? {
        guard let version = try store.installedReleaseVersion() else { return nil }
        if let hit = cached.withLock({ $0 }), hit.version == version { return hit.value }
        guard let stored = try store.installedRelease() else { return nil }
        let value = InstalledCurriculum(try Manifest.decode(stored.manifest))
        cached.withLock { $0 = (stored.version, value) }
        return value
    }
}
