public import Foundation
public import Merge
public import Model
public import Release
public import Store

/// What a site shows its learners: the installed release only — never one being fetched — and of
/// it only the courses targeted at the learner's role and province.
public struct ReleaseLibrary: Sendable {
    public let store: NodeStore
    public let chunks: ChunkStore

    public init(store: NodeStore, chunks: ChunkStore) {
        self.store = store
        self.chunks = chunks
    }

    /// The installed release's manifest (nil until a signed release is installed).
    public func installed() throws -> Manifest? {
        guard let r = try store.installedRelease() else { return nil }
        return try Manifest.decode(r.manifest)
    }

    /// Courses offered to a learner of `role` whose home commune is `commune`.
    public func courses(role: Role, commune: Int?) throws -> [Curriculum.Course] {
        guard let m = try installed() else { return [] }
        let province = try commune.flatMap { try store.provinceOf(commune: $0) }
        return m.curriculum.courses(for: role, province: province)
    }

    /// Courses offered to a learner known here (by learner id).
    public func courses(forLearner id: String) throws -> [Curriculum.Course] {
        guard let t = try store.learnerTargeting(id), let role = t.role.flatMap(Role.init(rawValue:)) else { return [] }
        guard let m = try installed() else { return [] }
        return m.curriculum.courses(for: role, province: t.province)
    }

    /// A file of the installed release, reassembled and checked chunk by chunk.
    public func file(_ path: String) throws -> Data? {
        guard let f = try installed()?.files.first(where: { $0.path == path }) else { return nil }
        return try chunks.assemble(f)
    }
}
