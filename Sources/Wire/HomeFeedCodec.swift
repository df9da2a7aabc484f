public import Foundation
public import Merge
public import Model
public import Sodium
import SwiftProtobuf

/// The body of a HOME_FEED message and its signature by the hub's identity key.
public enum HomeFeedCodec {
    static let domain = Data("hocvu home feed v1\n".utf8)
    public static let maxEntries = 2_000

    public static func seal(commune: Int, entries: [HomeFeedEntry], hub: SigningKeyPair) -> WireMessage {
        var b = Hocvu_Wire_V1_HomeFeedBody()
        b.commune = UInt32(commune)
        b.firstSeq = entries.first?.seq ?? 0
        b.entries = entries.map {
            var e = Hocvu_Wire_V1_HomeFeedEntry()
            e.node = $0.node.bytes
            e.change = $0.change
            return e
        }
        let body = (try? b.serializedData()) ?? Data()
        return .homeFeed(body: body, signature: hub.sign(domain + body))
    }

    /// Verifies the hub's signature, then decodes. Entries are numbered from `first_seq`.
    public static func open(body: Data, signature: Data, hubIdentity: Data) throws(WireError) -> (commune: Int, entries: [HomeFeedEntry]) {
        guard Ed25519.verify(signature: signature, message: domain + body, publicKey: hubIdentity) else {
            throw .invalidField("HomeFeed.signature (not the pinned hub's)")
        }
        let b: Hocvu_Wire_V1_HomeFeedBody
        do { b = try Hocvu_Wire_V1_HomeFeedBody(serializedBytes: body) } catch { throw .malformedPayload("HomeFeedBody") }
        guard b.entries.count <= maxEntries else { throw .tooManyItems("home feed entries", b.entries.count) }
        // Entries are first_seq, first_seq + 1, …: the whole run must stay within the sequence range.
        guard b.entries.isEmpty
            || (b.firstSeq >= 1 && b.firstSeq <= ProtocolLimits.maxSequence - UInt64(b.entries.count - 1))
        else { throw .outOfRange("HomeFeedBody.first_seq") }
        var out = [HomeFeedEntry]()
        for (i, e) in b.entries.enumerated() {
            guard let node = NodeID(bytes: e.node) else { throw .invalidField("HomeFeedEntry.node") }
            out.append(HomeFeedEntry(seq: b.firstSeq + UInt64(i), node: node, change: e.change))
        }
        return (Int(b.commune), out)
    }
}
