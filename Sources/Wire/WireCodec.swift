public import Foundation
import Merge
import Model
import Release
import SwiftProtobuf

/// Encodes and decodes `[envelope][payload]` messages, enforcing every limit before parsing.
public enum WireCodec {
    typealias PB = Hocvu_Wire_V1_Envelope

    public static func encode(_ message: WireMessage, id: UInt64) -> [Data] {
        var envelope = Hocvu_Wire_V1_Envelope()
        envelope.major = ProtocolVersion.major
        envelope.minor = ProtocolVersion.minor
        envelope.messageID = id
        let payload: Data
        do {
            switch message {
            case .hello(let h):
                envelope.kind = .hello
                var p = Hocvu_Wire_V1_Hello()
                p.node = h.origin.node.bytes
                p.epoch = h.origin.epoch
                p.clockMs = h.clockMilliseconds
                p.releaseVersion = h.releaseVersion
                p.knowledge = entries(h.knowledge)
                if let cursor = h.homeFeedCursor {
                    p.wantsHomeFeed = true
                    p.homeFeedCursor = cursor
                }
                if let hash = h.installedManifestHash { p.installedManifestHash = hash }
                payload = try p.serializedData()
            case .welcome(let w):
                envelope.kind = .welcome
                var p = Hocvu_Wire_V1_Welcome()
                p.clockMs = w.clockMilliseconds
                p.have = entries(w.have).map { e in
                    var e = e
                    if let node = NodeID(bytes: e.node), let id = w.haveBatchIDs[Origin(node: node, epoch: e.epoch)] {
                        e.lastBatchID = id
                    }
                    return e
                }
                p.credit = w.credit
                p.releaseVersion = w.releaseVersion
                payload = try p.serializedData()
            case .batches(let batches):
                envelope.kind = .batches
                var p = Hocvu_Wire_V1_Batches()
                p.batches = batches.map { b in
                    var x = Hocvu_Wire_V1_Batch()
                    x.node = b.origin.node.bytes
                    x.epoch = b.origin.epoch
                    x.firstSeq = b.firstSeq
                    x.lastSeq = b.lastSeq
                    x.previousID = b.previousID
                    x.body = b.body
                    x.signature = b.signature
                    return x
                }
                payload = try p.serializedData()
            case .ack(let a):
                envelope.kind = .ack
                var p = Hocvu_Wire_V1_Ack()
                p.ackedMessageID = a.ackedMessageID
                p.have = entries(a.have)
                p.credit = a.credit
                p.refused = a.refused.map {
                    var r = Hocvu_Wire_V1_Refused()
                    r.code = $0.code
                    r.reason = $0.reason
                    return r
                }
                payload = try p.serializedData()
            case .refuse(let code, let reason, let retry):
                envelope.kind = .refuse
                var p = Hocvu_Wire_V1_Refuse()
                p.code = Hocvu_Wire_V1_Refuse.Code(rawValue: code.rawValue) ?? .unspecified
                p.reason = reason
                p.retryAfterS = retry
                payload = try p.serializedData()
            case .releaseOffer(let r):
                envelope.kind = .releaseOffer
                var p = Hocvu_Wire_V1_ReleaseOffer()
                p.manifest = r.manifestBytes
                p.signatures = signatures(r.signatures)
                payload = try p.serializedData()
            case .releaseOfferDelta(let base, let delta, let sigs):
                envelope.kind = .releaseOffer
                var p = Hocvu_Wire_V1_ReleaseOffer()
                p.baseManifestHash = base
                p.manifestDelta = delta
                p.signatures = signatures(sigs)
                payload = try p.serializedData()
            case .chunkRequest(let hashes), .wholeChunkRequest(let hashes):
                envelope.kind = .chunkRequest
                var p = Hocvu_Wire_V1_ChunkRequest()
                p.hashes = hashes.map { Data(hex: $0) ?? Data() }
                if case .wholeChunkRequest = message { p.whole = true }
                payload = try p.serializedData()
            case .chunk(let hash, let data):
                envelope.kind = .chunk
                var p = Hocvu_Wire_V1_Chunk()
                p.hash = Data(hex: hash) ?? Data()
                p.data = data
                payload = try p.serializedData()
            case .chunkDelta(let hash, let bases, let delta):
                envelope.kind = .chunk
                var p = Hocvu_Wire_V1_Chunk()
                p.hash = Data(hex: hash) ?? Data()
                p.bases = bases.map { Data(hex: $0) ?? Data() }
                p.delta = delta
                payload = try p.serializedData()
            case .tryLater(let seconds, let reason):
                envelope.kind = .tryLater
                var p = Hocvu_Wire_V1_TryLater()
                p.retryAfterS = seconds
                p.reason = reason
                payload = try p.serializedData()
            case .published(let version):
                envelope.kind = .published
                var p = Hocvu_Wire_V1_Published()
                p.version = version
                payload = try p.serializedData()
            case .homeFeed(let body, let signature):
                envelope.kind = .homeFeed
                var p = Hocvu_Wire_V1_HomeFeed()
                p.body = body
                p.signature = signature
                payload = try p.serializedData()
            }
            return [try envelope.serializedData(), payload]
        } catch {
            // Serializing a well-formed message to bytes cannot fail (no required fields, no Any).
            preconditionFailure("protobuf serialization failed: \(error)")
        }
    }

    /// Decodes a received message.
    /// - Returns: the sender's message id and the message.
    public static func decode(_ frames: [Data]) throws(WireError) -> (id: UInt64, message: WireMessage) {
        guard frames.count == 2 else { throw .frameCount(frames.count) }
        guard frames[0].count <= WireLimits.maxEnvelopeBytes else { throw .envelopeTooLarge(frames[0].count) }
        guard frames[1].count <= WireLimits.maxPayloadBytes else { throw .payloadTooLarge(frames[1].count) }
        let envelope: Hocvu_Wire_V1_Envelope
        do { envelope = try Hocvu_Wire_V1_Envelope(serializedBytes: frames[0]) } catch { throw .malformedEnvelope }
        guard envelope.major == ProtocolVersion.major else { throw .unsupportedMajor(envelope.major) }
        let payload = frames[1]
        func parse<M: SwiftProtobuf.Message>(_ type: M.Type, _ name: String) throws(WireError) -> M {
            do { return try M(serializedBytes: payload) } catch { throw .malformedPayload(name) }
        }
        switch envelope.kind {
        case .hello:
            let p = try parse(Hocvu_Wire_V1_Hello.self, "Hello")
            guard let node = NodeID(bytes: p.node) else { throw .invalidField("Hello.node") }
            // clock_ms is the site's own reading, possibly years off: informational, never used in arithmetic.
            guard ProtocolLimits.isValidSequence(p.releaseVersion) else { throw .outOfRange("Hello.release_version") }
            guard !p.wantsHomeFeed || ProtocolLimits.isValidSequence(p.homeFeedCursor) else {
                throw .outOfRange("Hello.home_feed_cursor")
            }
            guard p.installedManifestHash.isEmpty || p.installedManifestHash.count == 32 else {
                throw .invalidField("Hello.installed_manifest_hash")
            }
            return (envelope.messageID, .hello(.init(
                origin: Origin(node: node, epoch: p.epoch), clockMilliseconds: p.clockMs,
                releaseVersion: p.releaseVersion, knowledge: try vector(p.knowledge),
                homeFeedCursor: p.wantsHomeFeed ? p.homeFeedCursor : nil,
                installedManifestHash: p.installedManifestHash.isEmpty ? nil : p.installedManifestHash)))
        case .welcome:
            let p = try parse(Hocvu_Wire_V1_Welcome.self, "Welcome")
            guard ProtocolLimits.isValidClock(p.clockMs) else { throw .outOfRange("Welcome.clock_ms") }
            guard ProtocolLimits.isValidSequence(p.releaseVersion) else { throw .outOfRange("Welcome.release_version") }
            var welcome = WireMessage.Welcome(
                clockMilliseconds: p.clockMs, have: try vector(p.have), credit: ProtocolLimits.clampedCredit(p.credit),
                releaseVersion: p.releaseVersion)
            for e in p.have where !e.lastBatchID.isEmpty {
                guard e.lastBatchID.count == 32 else { throw .invalidField("OriginSeq.last_batch_id") }
                if let node = NodeID(bytes: e.node) { welcome.haveBatchIDs[Origin(node: node, epoch: e.epoch)] = e.lastBatchID }
            }
            return (envelope.messageID, .welcome(welcome))
        case .batches:
            let p = try parse(Hocvu_Wire_V1_Batches.self, "Batches")
            guard p.batches.count <= WireLimits.maxBatchesPerMessage else { throw .tooManyBatches(p.batches.count) }
            var out = [Batch]()
            for b in p.batches {
                guard let node = NodeID(bytes: b.node) else { throw .invalidField("Batch.node") }
                guard b.previousID.count == 32 else { throw .invalidField("Batch.previous_id") }
                guard b.signature.count == 64 else { throw .invalidField("Batch.signature") }
                guard ProtocolLimits.isValidBatchRange(
                    first: b.firstSeq, last: b.lastSeq, maxChanges: ChangeCodec.maxChangesPerBatch)
                else { throw .outOfRange("Batch.first_seq/last_seq") }
                out.append(Batch(
                    origin: Origin(node: node, epoch: b.epoch), firstSeq: b.firstSeq, lastSeq: b.lastSeq,
                    previousID: b.previousID, body: b.body, signature: b.signature))
            }
            return (envelope.messageID, .batches(out))
        case .ack:
            let p = try parse(Hocvu_Wire_V1_Ack.self, "Ack")
            return (envelope.messageID, .ack(.init(
                ackedMessageID: p.ackedMessageID, have: try vector(p.have), credit: ProtocolLimits.clampedCredit(p.credit),
                refused: p.refused.map { r in
                    WireMessage.Ack.Refusal(code: String(r.code.prefix(64)), reason: String(r.reason.prefix(500)))
                })))
        case .refuse:
            let p = try parse(Hocvu_Wire_V1_Refuse.self, "Refuse")
            let code = WireMessage.RefuseCode(rawValue: p.code.rawValue) ?? .protocolViolation
            return (envelope.messageID, .refuse(code: code, reason: String(p.reason.prefix(500)), retryAfterSeconds: p.retryAfterS))
        case .releaseOffer:
            let p = try parse(Hocvu_Wire_V1_ReleaseOffer.self, "ReleaseOffer")
            guard p.signatures.count <= WireLimits.maxSignatures else { throw .tooManyItems("signatures", p.signatures.count) }
            var sigs = [ReleaseSignature]()
            for s in p.signatures {
                guard s.key.count == 32 else { throw .invalidField("ReleaseSignature.key") }
                guard s.signature.count == 64 else { throw .invalidField("ReleaseSignature.signature") }
                sigs.append(ReleaseSignature(key: s.key.hexString, signature: s.signature.hexString))
            }
            if !p.baseManifestHash.isEmpty || !p.manifestDelta.isEmpty {
                guard p.baseManifestHash.count == 32 else { throw .invalidField("ReleaseOffer.base_manifest_hash") }
                guard p.manifest.isEmpty, !p.manifestDelta.isEmpty else { throw .invalidField("ReleaseOffer.manifest_delta") }
                return (envelope.messageID, .releaseOfferDelta(baseManifestHash: p.baseManifestHash, delta: p.manifestDelta, signatures: sigs))
            }
            return (envelope.messageID, .releaseOffer(SignedRelease(manifestBytes: p.manifest, signatures: sigs)))
        case .chunkRequest:
            let p = try parse(Hocvu_Wire_V1_ChunkRequest.self, "ChunkRequest")
            guard p.hashes.count <= WireLimits.maxChunksPerRequest else { throw .tooManyItems("chunk names", p.hashes.count) }
            guard p.hashes.allSatisfy({ $0.count == 32 }) else { throw .invalidField("ChunkRequest.hashes") }
            let names = p.hashes.map(\.hexString)
            return (envelope.messageID, p.whole ? .wholeChunkRequest(names) : .chunkRequest(names))
        case .chunk:
            let p = try parse(Hocvu_Wire_V1_Chunk.self, "Chunk")
            guard p.hash.count == 32 else { throw .invalidField("Chunk.hash") }
            guard p.data.count <= Chunker.maximumSize else { throw .invalidField("Chunk.data size") }
            if !p.bases.isEmpty || !p.delta.isEmpty {
                guard (1...WireLimits.maxDeltaBases).contains(p.bases.count) else { throw .tooManyItems("delta bases", p.bases.count) }
                guard p.bases.allSatisfy({ $0.count == 32 }) else { throw .invalidField("Chunk.bases") }
                guard p.data.isEmpty, !p.delta.isEmpty else { throw .invalidField("Chunk.delta") }
                return (envelope.messageID, .chunkDelta(hash: p.hash.hexString, bases: p.bases.map(\.hexString), delta: p.delta))
            }
            return (envelope.messageID, .chunk(hash: p.hash.hexString, data: p.data))
        case .tryLater:
            let p = try parse(Hocvu_Wire_V1_TryLater.self, "TryLater")
            return (envelope.messageID, .tryLater(
                seconds: ProtocolLimits.clampedRetryAfter(p.retryAfterS), reason: String(p.reason.prefix(500))))
        case .published:
            let p = try parse(Hocvu_Wire_V1_Published.self, "Published")
            guard ProtocolLimits.isValidSequence(p.version) else { throw .outOfRange("Published.version") }
            return (envelope.messageID, .published(version: p.version))
        case .homeFeed:
            let p = try parse(Hocvu_Wire_V1_HomeFeed.self, "HomeFeed")
            guard p.signature.count == 64 else { throw .invalidField("HomeFeed.signature") }
            return (envelope.messageID, .homeFeed(body: p.body, signature: p.signature))
        case .unspecified, .UNRECOGNIZED:
            throw .unknownKind(envelope.kind.rawValue)
        }
    }

    static func signatures(_ sigs: [ReleaseSignature]) -> [Hocvu_Wire_V1_ReleaseSignature] {
        sigs.map {
            var s = Hocvu_Wire_V1_ReleaseSignature()
            s.key = Data(hex: $0.key) ?? Data()
            s.signature = Data(hex: $0.signature) ?? Data()
            return s
        }
    }

    static func entries(_ vv: VersionVector) -> [Hocvu_Wire_V1_OriginSeq] {
        vv.entries.sorted { $0.key < $1.key }.map {
            var e = Hocvu_Wire_V1_OriginSeq()
            e.node = $0.key.node.bytes
            e.epoch = $0.key.epoch
            e.seq = $0.value
            return e
        }
    }

    static func vector(_ entries: [Hocvu_Wire_V1_OriginSeq]) throws(WireError) -> VersionVector {
        var vv = VersionVector()
        for e in entries {
            guard let node = NodeID(bytes: e.node) else { throw .invalidField("OriginSeq.node") }
            guard ProtocolLimits.isValidSequence(e.seq) else { throw .outOfRange("OriginSeq.seq") }
            vv[Origin(node: node, epoch: e.epoch)] = e.seq
        }
        return vv
    }
}
