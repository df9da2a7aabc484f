import Foundation
import Merge
import Model
import Sodium
import Testing
import Wire

/// The "Test vectors" section of docs/protocol.md, checked against the project's own code.
///
/// The hex in the document was produced by ops/protocol-vectors.py, an independent implementation
/// written from the document alone. Here the same changes and batches are built with `ChangeCodec`,
/// `Batch.seal` and `HomeFeedCodec` and must give the same bytes: a change to the codec, the batch
/// header, the hash or the home-feed framing fails this test until the document (and every peer)
/// is changed with it.
@Suite("Protocol test vectors (docs/protocol.md)")
struct ProtocolVectorTests {
    static let documentURL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/protocol.md")

    /// Every `<!-- vector: NAME -->` … `<!-- /vector -->` block of the document, as bytes.
    static func documentVectors() throws -> [String: Data] {
        let text = try String(contentsOf: documentURL, encoding: .utf8)
        var out = [String: Data]()
        var rest = text[...]
        while let open = rest.range(of: "<!-- vector: ") {
            guard let nameEnd = rest[open.upperBound...].range(of: " -->"),
                  let close = rest[nameEnd.upperBound...].range(of: "<!-- /vector -->")
            else { throw VectorError.unterminated(String(rest[open.upperBound...].prefix(40))) }
            let name = String(rest[open.upperBound..<nameEnd.lowerBound])
            let hex = rest[nameEnd.upperBound..<close.lowerBound]
                .split(separator: "\n")
                .filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("```") }
                .joined()
                .filter { !$0.isWhitespace }
            guard let bytes = Data(hex: hex), !bytes.isEmpty else { throw VectorError.notHex(name) }
            guard out.updateValue(bytes, forKey: name) == nil else { throw VectorError.duplicate(name) }
            rest = rest[close.upperBound...]
        }
        return out
    }

    enum VectorError: Error { case unterminated(String), notHex(String), duplicate(String), missing(String) }

    static func vector(_ name: String, in vectors: [String: Data]) throws -> Data {
        guard let v = vectors[name] else { throw VectorError.missing(name) }
        return v
    }

    // MARK: The inputs, exactly as the document's "Inputs" lists them.

    static let t: UInt64 = 1_767_225_600_000  // 2026-01-01T00:00:00Z
    static let ti = Int64(t)
    static let nationalID = "001234567890"
    static let course = "ksn-101"
    static let learner = Identity.learnerID(nationalID: nationalID)
    static let certificate = Identity.certificateID(learnerID: learner, courseID: course)
    static let epoch: UInt64 = 0xFEDC_BA98_7654_3210

    static func stamp(_ ms: UInt64, _ counter: UInt16 = 0) -> HLCTimestamp { HLCTimestamp(milliseconds: ms, counter: counter) }

    static let changes: [Change] = [
        Change(hlc: stamp(t), record: .learner(LearnerChange(
            learnerID: learner, nationalID: nationalID, fullName: "Nguyễn Văn A", role: .communeCouncilDelegate,
            unit: nil, homeCommune: 70))),
        Change(hlc: stamp(t, 1), record: .learner(LearnerChange(learnerID: "Legacy-7", nationalID: "001234567891"))),
        Change(hlc: stamp(t + 1_000), record: .enrollment(EnrollmentRecord(learnerID: learner, courseID: course, length: 1))),
        Change(hlc: stamp(t + 2_000), record: .progress(ProgressRecord(
            learnerID: learner, lessonID: "ksn-101-l1", percent: 100, completedAt: ti + 1_900))),
        Change(hlc: stamp(t + 3_000), record: .progress(ProgressRecord(
            learnerID: learner, lessonID: "ksn-101-l2", percent: 40, completedAt: nil))),
        Change(hlc: stamp(t + 4_000), record: .attempt(AttemptRecord(
            attemptID: "019b76da-b7a0-7abc-8def-0123456789ab", learnerID: learner, quizID: "ksn-101-quiz",
            answers: [0, 2, -1, 3], score: 2, maxScore: 4, startedAt: ti + 3_500, finishedAt: ti + 3_900))),
        Change(hlc: stamp(t + 5_000), record: .certificate(CertificateRecord(
            certificateID: certificate, learnerID: learner, courseID: course, issuedAt: ti + 5_000))),
    ]

    static let second: [Change] = [
        Change(hlc: stamp(t + 6_000), record: .certificate(CertificateRecord(
            certificateID: certificate, learnerID: learner, courseID: course, issuedAt: ti + 5_000, revokedAt: ti + 6_000))),
    ]

    static let siteSeed = Data((0x01...0x20).map { UInt8($0) })
    static let hubSeed = Data((0x21...0x40).map { UInt8($0) })

    /// The key pair of `seed`. `SigningKeyPair` has no seed initializer, so the 64-byte libsodium
    /// secret key is assembled as seed ‖ public key, with the public key the document states; the
    /// caller then proves that public key is the seed's: a signature made with a wrong public key
    /// inside the secret key does not verify under that key (Ed25519 hashes A into every signature).
    static func keyPair(seed: Data, documentedPublicKey: Data) throws -> SigningKeyPair {
        let key = try SigningKeyPair(secretKey: seed + documentedPublicKey)
        let probe = Data("hocvu protocol vector key check".utf8)
        #expect(Ed25519.verify(signature: key.sign(probe), message: probe, publicKey: documentedPublicKey),
                "the documented public key is not the one of the documented seed")
        return key
    }

    static func hex(_ d: some Sequence<UInt8>) -> String { Data(d).hexString }

    // MARK: Tests

    @Test("the document holds every vector, as well-formed hex")
    func documentHasEveryVector() throws {
        let v = try Self.documentVectors()
        let expected = ["site-public-key", "hub-public-key"] + (1...7).map { "change-\($0)" }
            + ["batch-1", "batch-2"].flatMap { b in ["body", "header", "id", "signature"].map { "\(b)-\($0)" } }
            + ["home-feed-body", "home-feed-signature"]
        #expect(Set(v.keys) == Set(expected))
        #expect(try Self.vector("batch-1-header", in: v).count == 135)
        #expect(try Self.vector("batch-2-header", in: v).count == 135)
    }

    @Test("each change encodes to the documented bytes, and the bytes decode back to it")
    func changes() throws {
        let v = try Self.documentVectors()
        for (i, change) in Self.changes.enumerated() {
            var w = ByteWriter()
            ChangeCodec.encode(change, into: &w)
            let doc = try Self.vector("change-\(i + 1)", in: v)
            #expect(Self.hex(w.bytes) == Self.hex(doc), "change-\(i + 1)")
            #expect(try ChangeCodec.decode([0x01] + [UInt8](doc)) == [change], "change-\(i + 1) decodes")
        }
    }

    @Test("batch 1: body, 135-byte header, BLAKE2b-256 id and Ed25519 signature match the document")
    func firstBatch() throws {
        let v = try Self.documentVectors()
        let publicKey = try Self.vector("site-public-key", in: v)
        let key = try Self.keyPair(seed: Self.siteSeed, documentedPublicKey: publicKey)
        let origin = Origin(node: try #require(NodeID(bytes: key.publicKey)), epoch: Self.epoch)
        let batch = Batch.seal(changes: Self.changes, origin: origin, firstSeq: 1, previousID: Batch.zeroID, signer: key)

        #expect(batch.lastSeq == 7)
        #expect(Self.hex(batch.body) == Self.hex(try Self.vector("batch-1-body", in: v)))
        #expect(Self.hex(batch.header) == Self.hex(try Self.vector("batch-1-header", in: v)))
        #expect(Self.hex(batch.id) == Self.hex(try Self.vector("batch-1-id", in: v)))
        #expect(Self.hex(batch.signature) == Self.hex(try Self.vector("batch-1-signature", in: v)))
        #expect(batch.hasValidSignature)
        // The documented body is the concatenation the document describes: a count, then the changes.
        let concatenated = [UInt8(Self.changes.count)] + (1...7).flatMap { [UInt8](v["change-\($0)"] ?? Data()) }
        #expect(Self.hex(concatenated) == Self.hex(batch.body))
        #expect(try ChangeCodec.decode(try Self.vector("batch-1-body", in: v)) == Self.changes)
    }

    @Test("batch 2 chains to batch 1: previous_id is batch 1's id, first_seq 8")
    func secondBatch() throws {
        let v = try Self.documentVectors()
        let key = try Self.keyPair(seed: Self.siteSeed, documentedPublicKey: try Self.vector("site-public-key", in: v))
        let origin = Origin(node: try #require(NodeID(bytes: key.publicKey)), epoch: Self.epoch)
        let first = Batch.seal(changes: Self.changes, origin: origin, firstSeq: 1, previousID: Batch.zeroID, signer: key)
        let batch = Batch.seal(changes: Self.second, origin: origin, firstSeq: first.lastSeq + 1, previousID: first.id, signer: key)

        #expect(batch.firstSeq == 8 && batch.lastSeq == 8)
        #expect(Self.hex(batch.body) == Self.hex(try Self.vector("batch-2-body", in: v)))
        #expect(Self.hex(batch.header) == Self.hex(try Self.vector("batch-2-header", in: v)))
        #expect(Self.hex(batch.id) == Self.hex(try Self.vector("batch-2-id", in: v)))
        #expect(Self.hex(batch.signature) == Self.hex(try Self.vector("batch-2-signature", in: v)))
    }

    @Test("the documented batches survive the wire codec unchanged")
    func batchesOnTheWire() throws {
        let v = try Self.documentVectors()
        let node = try #require(NodeID(bytes: try Self.vector("site-public-key", in: v)))
        let origin = Origin(node: node, epoch: Self.epoch)
        let batch = Batch(
            origin: origin, firstSeq: 1, lastSeq: 7, previousID: Batch.zeroID, body: try Self.vector("batch-1-body", in: v),
            signature: try Self.vector("batch-1-signature", in: v))
        #expect(batch.hasValidSignature)
        #expect(Self.hex(batch.id) == Self.hex(try Self.vector("batch-1-id", in: v)))
        let (_, decoded) = try WireCodec.decode(WireCodec.encode(.batches([batch]), id: 1))
        #expect(decoded == .batches([batch]))
    }

    @Test("home feed: the signed body matches the document and opens to the two entries")
    func homeFeed() throws {
        let v = try Self.documentVectors()
        let site = try #require(NodeID(bytes: try Self.vector("site-public-key", in: v)))
        let hubPublicKey = try Self.vector("hub-public-key", in: v)
        let hub = try Self.keyPair(seed: Self.hubSeed, documentedPublicKey: hubPublicKey)
        let entries = [Self.changes[3], Self.changes[5]].enumerated().map { i, change in
            HomeFeedEntry(seq: UInt64(i + 1), node: site, change: Data(ChangeCodec.encode([change])))
        }
        guard case .homeFeed(let body, let signature) = HomeFeedCodec.seal(commune: 70, entries: entries, hub: hub) else {
            Issue.record("HomeFeedCodec.seal did not make a HOME_FEED message")
            return
        }
        #expect(Self.hex(body) == Self.hex(try Self.vector("home-feed-body", in: v)))
        #expect(Self.hex(signature) == Self.hex(try Self.vector("home-feed-signature", in: v)))
        let opened = try HomeFeedCodec.open(
            body: try Self.vector("home-feed-body", in: v), signature: try Self.vector("home-feed-signature", in: v),
            hubIdentity: hubPublicKey)
        #expect(opened.commune == 70)
        #expect(opened.entries == entries)
    }
}
