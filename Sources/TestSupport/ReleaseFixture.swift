public import Foundation
import Merge
public import Model
public import Release
public import Sodium

/// Admins, a trust file and releases built from a generated source directory, for tests and
/// benchmarks: real keys, real chunk files, real signatures.
public final class ReleaseFixture {
    public struct Admin: Sendable {
        public let signing = SigningKeyPair.generate()
        public let transport = BoxKeyPair.generate()
        public init() {}
        public var key: AdminKey { AdminKey(name: "admin", signingKey: signing.publicKey.hexString, transportKey: transport.publicKey.hexString) }
    }

    public let root: String
    public let admins: [Admin]
    public let trust: TrustPolicy
    public var source: String { "\(root)/source" }

    /// - Parameters: `threshold` of `admins` must sign.
    /// `extraMediaFiles` more files of `mediaBytes` each are attached to further lessons.
    public init(root: String, admins n: Int = 3, threshold: Int = 2, mediaBytes: Int = 3 << 20, extraMediaFiles: Int = 0) throws {
        self.root = root
        admins = (0..<n).map { _ in Admin() }
        trust = try TrustPolicy(threshold: threshold, admins: admins.map(\.key))
        try FileManager.default.createDirectory(atPath: "\(source)/lessons", withIntermediateDirectories: true)
        var c = SampleCurriculum.make()
        for (i, course) in c.courses.enumerated() {
            for (j, lesson) in course.lessons.enumerated() {
                let path = "lessons/\(lesson.id).md"
                try Data("# \(lesson.title)\n\nNội dung bài học \(lesson.id).\n".utf8).write(to: URL(fileURLWithPath: "\(source)/\(path)"))
                c.courses[i].lessons[j].files = [path]
            }
        }
        c.courses[0].lessons[0].files.append("media/video.bin")
        try FileManager.default.createDirectory(atPath: "\(source)/media", withIntermediateDirectories: true)
        try SampleMedia.bytes(count: mediaBytes, seed: 7).write(to: URL(fileURLWithPath: "\(source)/media/video.bin"))
        let lessons = c.courses.indices.flatMap { i in c.courses[i].lessons.indices.map { (i, $0) } }
        for k in 0..<extraMediaFiles {
            let path = "media/extra-\(k).bin"
            try SampleMedia.bytes(count: mediaBytes, seed: 100 + UInt64(k)).write(to: URL(fileURLWithPath: "\(source)/\(path)"))
            let (i, j) = lessons[(k + 1) % lessons.count]
            c.courses[i].lessons[j].files.append(path)
        }
        try writeCurriculum(c)
    }

    public func writeCurriculum(_ c: Curriculum) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted]
        try enc.encode(c).write(to: URL(fileURLWithPath: "\(source)/curriculum.json"))
    }

    /// Builds version `version` into `<root>/release-<version>` and has the first `signers` admins sign it.
    @discardableResult
    public func build(version: UInt64, signers: Int? = nil, created: Int64? = nil, validForDays: Int = 30) throws -> ReleaseBundle {
        let now = created ?? Int64(Date().timeIntervalSince1970)
        let (bundle, _) = try ReleaseBundle.build(
            from: source, into: "\(root)/release-\(version)", version: version, created: now, validForDays: validForDays)
        for a in admins.prefix(signers ?? trust.threshold) { try bundle.sign(with: a.signing) }
        return bundle
    }

    /// Inserts `count` new bytes in the middle of the media file (an edited lesson video).
    public func insertIntoMedia(count: Int, seed: UInt64 = 99) throws {
        let url = URL(fileURLWithPath: "\(source)/media/video.bin")
        var data = try Data(contentsOf: url)
        data.insert(contentsOf: SampleMedia.bytes(count: count, seed: seed), at: data.count / 2)
        try data.write(to: url)
    }
}
