import Foundation
import Merge
import Model
import Release
import Sodium
import TestSupport
import Testing
import Wire

@Suite("Wire codec")
struct WireCodecTests {
    static let key = SigningKeyPair.generate()
    static let origin = Origin(node: NodeID(bytes: key.publicKey)!, epoch: 42)
    static let batch = Batch.seal(
        changes: [Change(hlc: .zero, record: .enrollment(EnrollmentRecord(learnerID: "l", courseID: "c", length: 1)))],
        origin: origin, firstSeq: 1, previousID: Batch.zeroID, signer: key)

    static let messages: [WireMessage] = [
        .hello(.init(origin: origin, clockMilliseconds: 123, releaseVersion: 2, knowledge: VersionVector([origin: 9]))),
        .welcome(.init(clockMilliseconds: ProtocolLimits.programmeStartMilliseconds + 5, have: VersionVector([origin: 3]), credit: 8, releaseVersion: 1)),
        .batches([batch, batch]),
        .ack(.init(ackedMessageID: 77, have: VersionVector([origin: 1]), credit: 8, refused: [.init(code: "bad_signature", reason: "bad signature")])),
        .refuse(code: .revoked, reason: "site revoked", retryAfterSeconds: 0),
        .releaseOffer(SignedRelease(
            manifestBytes: Data(#"{"version":2}"#.utf8),
            signatures: [ReleaseSignature(key: key.publicKey.hexString, signature: key.sign(Data("m".utf8)).hexString)])),
        .chunkRequest([Chunker.name(Data("a".utf8)), Chunker.name(Data("b".utf8))]),
        .chunk(hash: Chunker.name(Data("a".utf8)), data: Data("a".utf8)),
        .tryLater(seconds: 20, reason: "busy"),
        .published(version: 2),
        .refuse(code: .releaseRefused, reason: "expired", retryAfterSeconds: 0),
        .homeFeed(body: Data([1, 2, 3]), signature: Data(repeating: 7, count: 64)),
        .hello(.init(origin: origin, clockMilliseconds: 1, releaseVersion: 0, knowledge: VersionVector(), homeFeedCursor: 0)),
        .hello(.init(
            origin: origin, clockMilliseconds: 1, releaseVersion: 3, knowledge: VersionVector(), installedManifestHash: Data(repeating: 5, count: 32))),
        .releaseOfferDelta(
            baseManifestHash: Data(repeating: 6, count: 32), delta: Data([1, 2, 0, 2, 7, 7]),
            signatures: [ReleaseSignature(key: key.publicKey.hexString, signature: key.sign(Data("m".utf8)).hexString)]),
        .wholeChunkRequest([Chunker.name(Data("a".utf8))]),
        .chunkDelta(hash: Chunker.name(Data("a".utf8)), bases: [Chunker.name(Data("b".utf8))], delta: Data([1, 1, 0, 1, 97])),
    ]

    @Test("every message kind round-trips", arguments: 0..<17)
    func roundTrip(_ i: Int) throws {
        let frames = WireCodec.encode(Self.messages[i], id: 1_000 + UInt64(i))
        #expect(frames.count == 2)
        let (id, decoded) = try WireCodec.decode(frames)
        #expect(id == 1_000 + UInt64(i))
        #expect(decoded == Self.messages[i])
    }

    @Test("a home feed opens only with the hub's key, and keeps the recording node of each entry")
    func homeFeed() throws {
        let hub = SigningKeyPair.generate()
        let change = Data(ChangeCodec.encode([
            Change(hlc: .zero, record: .enrollment(EnrollmentRecord(learnerID: "l", courseID: "c", length: 1)))]))
        let entries = [HomeFeedEntry(seq: 5, node: Self.origin.node, change: change),
                       HomeFeedEntry(seq: 6, node: Self.origin.node, change: change)]
        guard case .homeFeed(let body, let signature) = HomeFeedCodec.seal(commune: 73, entries: entries, hub: hub) else {
            Issue.record("not a home feed"); return
        }
        let opened = try HomeFeedCodec.open(body: body, signature: signature, hubIdentity: hub.publicKey)
        #expect(opened.commune == 73 && opened.entries == entries)
        #expect(throws: WireError.self) {
            try HomeFeedCodec.open(body: body, signature: signature, hubIdentity: SigningKeyPair.generate().publicKey)
        }
        var tampered = body
        tampered[tampered.count - 1] ^= 1
        #expect(throws: WireError.self) { try HomeFeedCodec.open(body: tampered, signature: signature, hubIdentity: hub.publicKey) }
    }

    @Test("release messages: limits and field sizes are enforced")
    func releaseLimits() {
        let tooMany = WireCodec.encode(.chunkRequest((0...WireLimits.maxChunksPerRequest).map { _ in String(repeating: "ab", count: 32) }), id: 1)
        #expect(throws: WireError.tooManyItems("chunk names", WireLimits.maxChunksPerRequest + 1)) { try WireCodec.decode(tooMany) }
        // A chunk name must be 32 bytes; the encoder writes what it is given, the decoder refuses.
        let shortName = WireCodec.encode(.chunk(hash: "abcd", data: Data("x".utf8)), id: 1)
        #expect(throws: WireError.invalidField("Chunk.hash")) { try WireCodec.decode(shortName) }
        let big = WireCodec.encode(.chunk(hash: String(repeating: "cd", count: 32), data: Data(count: Chunker.maximumSize + 1)), id: 1)
        #expect(throws: WireError.invalidField("Chunk.data size")) { try WireCodec.decode(big) }
        let badSig = WireCodec.encode(.releaseOffer(SignedRelease(manifestBytes: Data(), signatures: [ReleaseSignature(key: "00", signature: "00")])), id: 1)
        #expect(throws: WireError.invalidField("ReleaseSignature.key")) { try WireCodec.decode(badSig) }
        // Deltas (minor 4): the names they refer to are 32 bytes, 1 to 8 bases, never with whole data.
        let name = String(repeating: "ab", count: 32)
        let noBase = WireCodec.encode(.chunkDelta(hash: name, bases: [], delta: Data([1, 0])), id: 1)
        #expect(throws: WireError.tooManyItems("delta bases", 0)) { try WireCodec.decode(noBase) }
        let nineBases = WireCodec.encode(.chunkDelta(hash: name, bases: Array(repeating: name, count: 9), delta: Data([1, 0])), id: 1)
        #expect(throws: WireError.tooManyItems("delta bases", 9)) { try WireCodec.decode(nineBases) }
        let shortBase = WireCodec.encode(.chunkDelta(hash: name, bases: ["abcd"], delta: Data([1, 0])), id: 1)
        #expect(throws: WireError.invalidField("Chunk.bases")) { try WireCodec.decode(shortBase) }
        let emptyDelta = WireCodec.encode(.chunkDelta(hash: name, bases: [name], delta: Data()), id: 1)
        #expect(throws: WireError.invalidField("Chunk.delta")) { try WireCodec.decode(emptyDelta) }
        let shortManifestBase = WireCodec.encode(.releaseOfferDelta(baseManifestHash: Data([1]), delta: Data([1, 0]), signatures: []), id: 1)
        #expect(throws: WireError.invalidField("ReleaseOffer.base_manifest_hash")) { try WireCodec.decode(shortManifestBase) }
        let shortHelloHash = WireCodec.encode(
            .hello(.init(origin: Self.origin, clockMilliseconds: 1, releaseVersion: 0, knowledge: VersionVector(), installedManifestHash: Data([1]))), id: 1)
        #expect(throws: WireError.invalidField("Hello.installed_manifest_hash")) { try WireCodec.decode(shortHelloHash) }
    }

    @Test("wrong frame counts are refused")
    func frameCounts() {
        let frames = WireCodec.encode(Self.messages[0], id: 1)
        #expect(throws: WireError.frameCount(1)) { try WireCodec.decode([frames[0]]) }
        #expect(throws: WireError.frameCount(3)) { try WireCodec.decode(frames + [Data()]) }
        #expect(throws: WireError.frameCount(0)) { try WireCodec.decode([]) }
    }

    @Test("oversized frames are refused before parsing")
    func oversized() {
        let frames = WireCodec.encode(Self.messages[0], id: 1)
        #expect(throws: WireError.payloadTooLarge(WireLimits.maxPayloadBytes + 1)) {
            try WireCodec.decode([frames[0], Data(count: WireLimits.maxPayloadBytes + 1)])
        }
        #expect(throws: WireError.envelopeTooLarge(1_000)) { try WireCodec.decode([Data(count: 1_000), frames[1]]) }
    }

    @Test("an unknown major version gets a clear refusal to send back")
    func unknownMajor() throws {
        var frames = WireCodec.encode(Self.messages[0], id: 1)
        // Envelope field 1 (major) is the first byte pair: tag 0x08, value 1. Make it 2.
        #expect(frames[0][0] == 0x08 && frames[0][1] == 0x01)
        frames[0][1] = 0x02
        do {
            _ = try WireCodec.decode(frames)
            Issue.record("accepted major 2")
        } catch {
            #expect(error == .unsupportedMajor(2))
            guard case .refuse(.unsupportedVersion, let reason, _)? = error.refusal else {
                Issue.record("no refusal"); return
            }
            #expect(reason.contains("major version 2"))
        }
    }

    @Test("malformed payloads and bad field sizes are refused, never a crash", arguments: 0..<3)
    func garbage(seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        for i in 0..<300 {
            var frames = WireCodec.encode(Self.messages[i % Self.messages.count], id: 1)
            let f = Int.random(in: 0...1, using: &rng)
            if !frames[f].isEmpty {
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    frames[f][Int.random(in: 0..<frames[f].count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
            }
            _ = try? WireCodec.decode(frames)
        }
        #expect(throws: WireError.malformedPayload("Batches")) {
            // A Hello payload under a Batches envelope.
            let env = WireCodec.encode(.batches([]), id: 1)[0]
            _ = try WireCodec.decode([env, Data([0xFF, 0xFF, 0xFF])])
        }
    }
}
