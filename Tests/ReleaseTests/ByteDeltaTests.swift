import Foundation
import Release
import TestSupport
import Testing

@Suite struct ByteDeltaTests {
    @Test("an insertion costs about the inserted bytes, and the delta rebuilds the target exactly", arguments: [0, 1, 31, 4_096, 65_536])
    func insertionRoundTrip(_ inserted: Int) throws {
        let base = SampleMedia.bytes(count: 300_000, seed: 1)
        var target = base
        target.insert(contentsOf: SampleMedia.bytes(count: inserted, seed: 2), at: 123_457)
        let delta = ByteDelta.encode(target, bases: [base])
        #expect(delta.count <= inserted + 64, "delta \(delta.count) bytes for \(inserted) inserted")
        #expect(try ByteDelta.apply(delta, bases: [base], maxSize: 1 << 20) == target)
    }

    @Test("copies come from several bases, and unrelated bytes go as literals")
    func severalBases() throws {
        let a = SampleMedia.bytes(count: 100_000, seed: 3), b = SampleMedia.bytes(count: 80_000, seed: 4)
        let fresh = SampleMedia.bytes(count: 5_000, seed: 5)
        let target = b.subdata(in: 10_000..<50_000) + fresh + a.subdata(in: 0..<60_000) + Data([1, 2, 3])
        let delta = ByteDelta.encode(target, bases: [a, b])
        #expect(delta.count < fresh.count + 100)
        #expect(try ByteDelta.apply(delta, bases: [a, b], maxSize: 1 << 20) == target)
        // Nothing in common: all literal, still exact; an empty target too.
        let alone = ByteDelta.encode(fresh, bases: [a])
        #expect(try ByteDelta.apply(alone, bases: [], maxSize: 1 << 20) == fresh)
        #expect(try ByteDelta.apply(ByteDelta.encode(Data(), bases: [a]), bases: [a], maxSize: 0) == Data())
    }

    @Test("hex digits (chunk names in a manifest) travel packed two per byte, and unpack exactly")
    func hexLiterals() throws {
        let names = (0..<40).map { Chunker.name(Data([UInt8($0)])) }
        let manifest = Data(("{\"chunks\":[" + names.map { "{\"hash\":\"\($0)\",\"size\":262144}" }.joined(separator: ",") + "]}").utf8)
        let delta = ByteDelta.encode(manifest, bases: [])
        #expect(delta.count < manifest.count * 3 / 4, "\(delta.count) of \(manifest.count)")
        #expect(try ByteDelta.apply(delta, bases: [], maxSize: 1 << 20) == manifest)
        // An odd number of digits, and short runs left as they are.
        let odd = Data("x0123456789abcdef0y12z".utf8)
        #expect(try ByteDelta.apply(ByteDelta.encode(odd, bases: []), bases: [], maxSize: 100) == odd)
        #expect((try? ByteDelta.apply(Data([1, 4, 2, 5, 0x12, 0x34]), bases: [], maxSize: 10)) == nil)  // 5 digits past a 4-byte target
        #expect((try? ByteDelta.apply(Data([1, 4, 2, 4, 0x12]), bases: [], maxSize: 10)) == nil)  // truncated
        #expect(try ByteDelta.apply(Data([1, 3, 2, 3, 0xAB, 0xC0]), bases: [], maxSize: 10) == Data("abc".utf8))
    }

    @Test("a delta from a peer is range-checked: nothing out of bounds, never a trap")
    func malformed() {
        let base = Data(repeating: 9, count: 100)
        func fails(_ bytes: [UInt8], maxSize: Int = 1_000) -> Bool {
            (try? ByteDelta.apply(Data(bytes), bases: [base], maxSize: maxSize)) == nil
        }
        #expect(fails([]))  // no format byte
        #expect(fails([2, 0]))  // unknown format
        #expect(fails([1, 10], maxSize: 5))  // declared size above the caller's limit
        #expect(fails([1, 5, 0, 6, 1, 2, 3, 4, 5, 6]))  // literal beyond the declared size
        #expect(fails([1, 5, 0, 5, 1, 2]))  // truncated literal
        #expect(fails([1, 5, 1, 1, 0, 5]))  // copy from base 1 of 1
        #expect(fails([1, 50, 1, 0, 90, 20]))  // copy past the base's end
        #expect(fails([1, 5, 1, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 1]))  // offset over 64 bits
        #expect(fails([1, 5, 1, 0, 0, 0x80]))  // truncated varint
        #expect(fails([1, 5, 7]))  // unknown op
        #expect(fails([1, 5, 0, 2, 1, 2]))  // produces 2 of 5 bytes
        #expect((try? ByteDelta.apply(Data([1, 3, 1, 0, 97, 3]), bases: [base], maxSize: 10)) == Data(repeating: 9, count: 3))
    }

    @Test("random deltas never trap and whatever they decode to is within bounds")
    func fuzz() {
        var g = SeededGenerator(seed: 14)
        let base = SampleMedia.bytes(count: 1_000, seed: 6)
        for _ in 0..<2_000 {
            var bytes = (0..<Int.random(in: 0..<24, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) }
            if !bytes.isEmpty { bytes[0] = 1 }
            if let out = try? ByteDelta.apply(Data(bytes), bases: [base], maxSize: 4_096) { #expect(out.count <= 4_096) }
        }
    }
}

@Suite struct ReleaseDeltaTests {
    func manifest(_ files: [String: Data], version: UInt64) -> Manifest {
        let entries = files.keys.sorted().map { path in
            let data = files[path]!
            return Manifest.File(
                path: path, size: data.count,
                chunks: Chunker.ranges(data).map { Manifest.ChunkRef(hash: Chunker.name(data[$0]), size: $0.count) })
        }
        return Manifest(version: version, created: 0, expires: 1, curriculum: .init(version: version, areas: [], courses: []), files: entries)
    }

    @Test("a new chunk is encoded against the chunks it replaced in its file, and rebuilds from them")
    func insertionPlan() throws {
        let before = SampleMedia.bytes(count: 8 << 20, seed: 7)
        var after = before
        after.insert(contentsOf: SampleMedia.bytes(count: 65_536, seed: 8), at: 4 << 20)
        let other = SampleMedia.bytes(count: 2 << 20, seed: 9)
        let old = manifest(["media/a.bin": before, "media/b.bin": other], version: 1)
        let new = manifest(["media/a.bin": after, "media/b.bin": other], version: 2)
        let plan = ReleaseDelta.bases(new: new, old: old)
        let oldHeld = Set(old.chunks.map(\.hash))
        let fresh = new.chunks.filter { !oldHeld.contains($0.hash) }
        #expect(!fresh.isEmpty && Set(plan.keys) == Set(fresh.map(\.hash)))
        // Every base is an old chunk the new release dropped; each chunk rebuilds from its bases.
        var bytesOf: [String: Data] = [:]
        for (file, data) in [(old.files[0], before), (new.files[0], after)] {
            var offset = 0
            for c in file.chunks {
                bytesOf[c.hash] = data.subdata(in: offset..<(offset + c.size))
                offset += c.size
            }
        }
        let newHeld = Set(new.chunks.map(\.hash))
        var sent = 0
        for c in fresh {
            let bases = try #require(plan[c.hash])
            #expect(!bases.isEmpty && bases.count <= ReleaseDelta.maxBases)
            #expect(bases.allSatisfy { oldHeld.contains($0) && !newHeld.contains($0) })
            let target = try #require(bytesOf[c.hash])
            let delta = ReleaseDelta.worthwhileDelta(target, bases: bases.map { bytesOf[$0]! }) ?? target
            sent += delta.count
            if delta != target { #expect(try ByteDelta.apply(delta, bases: bases.map { bytesOf[$0]! }, maxSize: c.size) == target) }
        }
        // About the inserted bytes travel, not the whole chunks around the edit.
        #expect(sent < 65_536 + 4_096, "\(sent) bytes for 65,536 inserted; new chunks hold \(fresh.reduce(0) { $0 + $1.size })")
    }

    @Test("a file new in this release, or an unchanged one, has nothing to encode against")
    func nothingToReuse() {
        let a = SampleMedia.bytes(count: 1 << 20, seed: 10)
        let old = manifest(["a.bin": a], version: 1)
        let new = manifest(["a.bin": a, "b.bin": SampleMedia.bytes(count: 1 << 20, seed: 11)], version: 2)
        #expect(ReleaseDelta.bases(new: new, old: old).isEmpty)
    }
}
