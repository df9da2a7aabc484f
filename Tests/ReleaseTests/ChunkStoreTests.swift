import Foundation
import Release
import TestSupport
import Testing

@Suite struct ChunkStoreTests {
    @Test func writeIsDurableAndTemporariesAreCleaned() throws {
        let dir = try TemporaryDirectory(prefix: "hocvu-chunks")
        defer { dir.remove() }
        let store = try ChunkStore(directory: dir.file("c"))
        let data = SampleMedia.bytes(count: 5_000, seed: 1)
        let h = Chunker.name(data)
        #expect(!store.has(h))
        try store.write(h, data)
        #expect(store.has(h))
        #expect(try store.read(h) == data)
        // A crash mid-write leaves only a temporary name, which reopening removes.
        let tmp = dir.file("c/\(h.prefix(2))/.\(h).tmp")
        try Data("partial".utf8).write(to: URL(fileURLWithPath: tmp))
        _ = try ChunkStore(directory: dir.file("c"))
        #expect(!FileManager.default.fileExists(atPath: tmp))
        #expect(store.all() == [h])
        #expect(store.collect(keeping: []) == 1)
        #expect(!store.has(h))
    }

    /// What a hub serves is checked first; a rotted file is moved aside, never deleted.
    @Test func rottedFileIsDetectedAndQuarantined() throws {
        let dir = try TemporaryDirectory(prefix: "hocvu-chunks")
        defer { dir.remove() }
        let store = try ChunkStore(directory: dir.file("c"))
        let data = SampleMedia.bytes(count: 5_000, seed: 2)
        let h = Chunker.name(data)
        try store.write(h, data)
        #expect(try store.readVerified(h, size: 5_000) == data)
        #expect(throws: ChunkStoreError.self) { try store.readVerified(h, size: 4_999) }  // size the manifest disagrees with
        var rotted = data
        rotted[2_500] ^= 0x01
        try rotted.write(to: URL(fileURLWithPath: dir.file("c/\(h.prefix(2))/\(h)")))
        do {
            _ = try store.readVerified(h, size: 5_000)
            Issue.record("a rotted chunk was read as good")
        } catch ChunkStoreError.corrupt(let why) {
            #expect(why.contains(h))
        }
        let moved = try store.quarantine(h, now: 1_234)
        #expect(moved == dir.file("c/quarantine/\(h).1234"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: moved)) == rotted)
        #expect(!store.has(h) && store.all().isEmpty && store.missing([.init(hash: h, size: 5_000)]).count == 1)
        #expect(store.collect(keeping: []) == 0)  // the quarantine is not collected
        #expect(FileManager.default.fileExists(atPath: moved))
    }

    @Test func builtReleaseReassemblesEveryFile() throws {
        let dir = try TemporaryDirectory(prefix: "hocvu-bundle")
        defer { dir.remove() }
        let fx = try ReleaseFixture(root: dir.path, mediaBytes: 2 << 20)
        let bundle = try fx.build(version: 1)
        let m = try Manifest.decode(try bundle.manifestBytes())
        let chunks = try bundle.chunkStore()
        for f in m.files {
            let original = try Data(contentsOf: URL(fileURLWithPath: "\(fx.source)/\(f.path)"))
            #expect(try chunks.assemble(f) == original)
        }
        // Rebuilding the same source gives the same bytes (admins sign what they can reproduce).
        let again = try ReleaseBundle.build(from: fx.source, into: dir.file("again"), version: 1, created: m.created, validForDays: 30)
        #expect(try again.0.manifestBytes() == bundle.manifestBytes())
        #expect(try bundle.signed().signatures.count == 2)
    }
}
