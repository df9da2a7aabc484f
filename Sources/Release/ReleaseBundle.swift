public import Foundation
import Model
public import Sodium

/// A release as an admin holds it on disk, between build, signing and publishing:
///
///     OUT/manifest.json          the exact bytes every admin signs
///     OUT/signatures/*.sig       one JSON ReleaseSignature per admin (collected offline)
///     OUT/chunks/xx/<hash>       the content
public struct ReleaseBundle: Sendable {
    public let directory: String
    public var manifestPath: String { "\(directory)/manifest.json" }
    public var signaturesDirectory: String { "\(directory)/signatures" }

    public init(directory: String) { self.directory = directory }

    public func chunkStore() throws -> ChunkStore { try ChunkStore(directory: "\(directory)/chunks") }

    /// Builds a release from `source`: `curriculum.json` (areas and courses; see
    /// docs/releases.md) plus every other regular file under it, each cut into chunks.
    public static func build(
        from source: String, into out: String, version: UInt64, created: Int64, validForDays: Int
    ) throws -> (ReleaseBundle, Manifest) {
        let sourceURL = URL(fileURLWithPath: source)
        let curriculumURL = sourceURL.appendingPathComponent("curriculum.json")
        guard let data = try? Data(contentsOf: curriculumURL) else {
            throw ReleaseBuildError("\(curriculumURL.path) is missing: a release directory needs curriculum.json")
        }
        var curriculum: Curriculum
        do { curriculum = try JSONDecoder().decode(Curriculum.self, from: data) } catch {
            throw ReleaseBuildError("\(curriculumURL.path) is not a valid curriculum: \(error)")
        }
        curriculum.version = version
        let bundle = ReleaseBundle(directory: out)
        try FileManager.default.createDirectory(atPath: bundle.signaturesDirectory, withIntermediateDirectories: true)
        let chunks = try bundle.chunkStore()
        var files = [Manifest.File]()
        for relative in try regularFiles(under: source) where relative != "curriculum.json" {
            let content = try Data(contentsOf: sourceURL.appendingPathComponent(relative), options: .alwaysMapped)
            var refs = [Manifest.ChunkRef]()
            for r in Chunker.ranges(content) {
                let bytes = content[r]
                let hash = Chunker.name(bytes)
                if !chunks.has(hash) { try chunks.write(hash, Data(bytes)) }
                refs.append(.init(hash: hash, size: r.count))
            }
            files.append(.init(path: relative, size: content.count, chunks: refs))
        }
        let manifest = Manifest(
            version: version, created: created, expires: created + Int64(validForDays) * 86_400,
            curriculum: curriculum, files: files)
        do { try manifest.checkConsistency() } catch { throw ReleaseBuildError("\(error)") }
        // Signatures of an earlier build are over other bytes: drop them.
        for old in (try? FileManager.default.contentsOfDirectory(atPath: bundle.signaturesDirectory)) ?? [] {
            try? FileManager.default.removeItem(atPath: "\(bundle.signaturesDirectory)/\(old)")
        }
        try manifest.encoded().write(to: URL(fileURLWithPath: bundle.manifestPath), options: .atomic)
        chunks.collect(keeping: Set(manifest.chunks.map(\.hash)))
        return (bundle, manifest)
    }

    /// Files under `root`, relative, sorted (so a rebuild lists them in the same order).
    static func regularFiles(under root: String) throws -> [String] {
        guard let e = FileManager.default.enumerator(atPath: root) else {
            throw ReleaseBuildError("cannot read directory \(root)")
        }
        var out = [String]()
        while let p = e.nextObject() as? String {
            if (e.fileAttributes?[.type] as? FileAttributeType) == .typeRegular, !p.split(separator: "/").contains(where: { $0.hasPrefix(".") }) {
                out.append(p)
            }
        }
        return out.sorted()
    }

    public func manifestBytes() throws -> Data {
        guard let d = try? Data(contentsOf: URL(fileURLWithPath: manifestPath)) else {
            throw ReleaseBuildError("\(manifestPath) is missing; build the release first with `hocvu admin release build`")
        }
        return d
    }

    /// Adds this admin's signature (`signatures/<key prefix>.sig`).
    @discardableResult
    public func sign(with key: SigningKeyPair) throws -> ReleaseSignature {
        let bytes = try manifestBytes()
        _ = try Manifest.decode(bytes)
        let s = ReleaseSignature.sign(bytes, with: key)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        try FileManager.default.createDirectory(atPath: signaturesDirectory, withIntermediateDirectories: true)
        try enc.encode(s).write(to: URL(fileURLWithPath: "\(signaturesDirectory)/\(s.key.prefix(16)).sig"), options: .atomic)
        return s
    }

    public func signed() throws -> SignedRelease {
        var sigs = [ReleaseSignature]()
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: signaturesDirectory)) ?? []).sorted() where name.hasSuffix(".sig") {
            let data = try Data(contentsOf: URL(fileURLWithPath: "\(signaturesDirectory)/\(name)"))
            guard let s = try? JSONDecoder().decode(ReleaseSignature.self, from: data) else {
                throw ReleaseBuildError("\(signaturesDirectory)/\(name) is not a signature file written by `hocvu admin release sign`")
            }
            sigs.append(s)
        }
        return SignedRelease(manifestBytes: try manifestBytes(), signatures: sigs)
    }
}

public struct ReleaseBuildError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
