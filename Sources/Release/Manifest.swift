public import Foundation
public import Model
public import Merge

/// What a release is: its version and validity window, the curriculum it installs (framework
/// areas, courses with their targeting by role and province, lessons, quizzes), and every file
/// as a list of content-named chunks.
///
/// Admins sign the manifest's exact bytes; nodes verify those bytes and never re-encode them.
/// ``encoded()`` is deterministic (sorted keys, no whitespace) so a rebuilt manifest of the same
/// release is byte-identical.
public struct Manifest: Codable, Hashable, Sendable {
    public static let format = 1

    public struct ChunkRef: Codable, Hashable, Sendable {
        /// BLAKE2b-256 of the chunk's bytes, lowercase hex.
        public var hash: String
        public var size: Int
        public init(hash: String, size: Int) { self.hash = hash; self.size = size }
    }

    public struct File: Codable, Hashable, Sendable {
        /// Path inside the release, `/`-separated, relative.
        public var path: String
        public var size: Int
        public var chunks: [ChunkRef]
        public init(path: String, size: Int, chunks: [ChunkRef]) { self.path = path; self.size = size; self.chunks = chunks }
    }

    public var format: Int
    public var version: UInt64
    /// Seconds since 1970 (UTC).
    public var created: Int64
    /// After this instant (seconds since 1970) no node installs the release: a frozen mirror cannot
    /// keep serving it forever.
    public var expires: Int64
    public var curriculum: Curriculum
    public var files: [File]

    public init(version: UInt64, created: Int64, expires: Int64, curriculum: Curriculum, files: [File]) {
        self.format = Self.format
        self.version = version; self.created = created; self.expires = expires
        self.curriculum = curriculum; self.files = files
    }

    public func encoded() -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do { return try enc.encode(self) } catch { preconditionFailure("manifest encoding cannot fail: \(error)") }
    }

    public static func decode(_ bytes: Data) throws(ReleaseRefusal) -> Manifest {
        do {
            return try JSONDecoder().decode(Manifest.self, from: bytes)
        } catch {
            throw .malformedManifest("\(error)")
        }
    }

    /// Every distinct chunk the release needs, in first-use order.
    public var chunks: [ChunkRef] {
        var seen = Set<String>()
        var out = [ChunkRef]()
        for f in files { for c in f.chunks where seen.insert(c.hash).inserted { out.append(c) } }
        return out
    }

    public var totalBytes: Int { files.reduce(0) { $0 + $1.size } }

    /// The manifest must agree with itself: sizes add up, chunks are well-formed, every lesson's
    /// file is listed, identifiers are unique. A disagreement means a broken or forged build.
    public func checkConsistency() throws(ReleaseRefusal) {
        func fail(_ why: String) -> ReleaseRefusal { .inconsistent(why) }
        guard format == Self.format else { throw fail("format \(format) is not supported (this build reads format \(Self.format))") }
        guard version > 0 else { throw fail("version must be at least 1") }
        // Stored as a signed 64-bit integer and exact in JSON: a larger version must not crash a node.
        guard version <= ProtocolLimits.maxSequence else { throw fail("version \(version) is above 2^53 − 1") }
        guard curriculum.version == version else {
            throw fail("curriculum version \(curriculum.version) differs from the manifest version \(version)")
        }
        guard expires > created else { throw fail("expires (\(expires)) is not after created (\(created))") }
        var paths = Set<String>()
        var sizes = [String: Int]()
        for f in files {
            guard Self.isSafePath(f.path) else { throw fail("file path \"\(f.path)\" is not a plain relative path") }
            guard paths.insert(f.path).inserted else { throw fail("file \"\(f.path)\" is listed twice") }
            guard !f.chunks.isEmpty || f.size == 0 else { throw fail("file \"\(f.path)\" has \(f.size) bytes but no chunks") }
            var sum = 0
            for c in f.chunks {
                guard c.hash.count == 64, c.hash.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
                    throw fail("file \"\(f.path)\" names a chunk \"\(c.hash.prefix(70))\" that is not a BLAKE2b-256 hex hash")
                }
                guard (1...Chunker.maximumSize).contains(c.size) else {
                    throw fail("chunk \(c.hash.prefix(16))… of \"\(f.path)\" has size \(c.size) (1…\(Chunker.maximumSize) allowed)")
                }
                if let s = sizes.updateValue(c.size, forKey: c.hash), s != c.size {
                    throw fail("chunk \(c.hash.prefix(16))… is listed with two sizes (\(s) and \(c.size))")
                }
                sum += c.size
            }
            guard sum == f.size else { throw fail("file \"\(f.path)\" says \(f.size) bytes but its chunks add up to \(sum)") }
        }
        var ids = Set<String>()
        let areas = Set(curriculum.areas.map(\.id))
        for course in curriculum.courses {
            guard areas.contains(course.area) else { throw fail("course \(course.id) names unknown area \(course.area)") }
            guard (1...100).contains(course.passPercent) else { throw fail("course \(course.id) pass percent \(course.passPercent) is outside 1…100") }
            // Nothing required would mean nobody can ever complete it (CompletionRule): refused here,
            // so no release can publish such a course.
            guard course.lessons.contains(where: \.required) || !course.quizzes.isEmpty else {
                throw fail("course \(course.id) requires nothing (no required lesson, no quiz), so nobody could complete it; mark a lesson required or add a quiz")
            }
            let all = [course.id] + course.lessons.map(\.id) + course.quizzes.map(\.id)
            for id in all where !ids.insert(id).inserted { throw fail("identifier \(id) is used twice") }
            // Course, lesson, quiz and question ids appear in the portal's URLs and forms.
            for id in all + course.quizzes.flatMap({ $0.questions.map(\.id) }) where !Self.isPlainID(id) {
                throw fail("identifier \(id.debugDescription.prefix(80)) must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-' (it appears in the learner portal's addresses)")
            }
            for lesson in course.lessons {
                for path in lesson.files where !paths.contains(path) {
                    throw fail("lesson \(lesson.id) shows \"\(path)\", which the file list does not contain")
                }
            }
            for quiz in course.quizzes {
                for q in quiz.questions where !(0..<q.choices.count).contains(q.answer) || q.points < 1 {
                    throw fail("question \(q.id) has an answer outside its choices or no points")
                }
            }
        }
    }

    /// The one rule for curriculum identifiers: 1 to 64 of `A-Za-z0-9._-`.
    public static func isPlainID(_ id: String) -> Bool {
        (1...64).contains(id.utf8.count) && id.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E
        }
    }

    static func isSafePath(_ p: String) -> Bool {
        guard !p.isEmpty, !p.hasPrefix("/"), p.utf8.count <= 1024, !p.contains("\\"), !p.contains("\0") else { return false }
        return p.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." }
    }
}

extension Curriculum {
    /// The courses a learner of `role` whose home commune is in `province` is offered: a course
    /// with no roles (or no provinces) listed targets everyone on that axis.
    public func courses(for role: Role, province: Int?) -> [Course] {
        courses.filter { $0.targets(role: role, province: province) }
    }
}

extension Curriculum.Course {
    /// True when this course is offered to a learner of `role` whose home commune is in `province`.
    public func targets(role: Role, province: Int?) -> Bool {
        (roles.isEmpty || roles.contains(role)) && (provinces.isEmpty || province.map { provinces.contains($0) } ?? false)
    }
}
