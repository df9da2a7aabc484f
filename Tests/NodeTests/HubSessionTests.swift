import Foundation
import Merge
import Model
import Node
import Testing
import Wire

/// Every rule the hub applies to a site's connection, without sockets: HubSession decides,
/// HubServer only carries out (the same rules are exercised over CURVE in SyncTests and
/// TrustBoundaryTests).
@Suite("Hub session state machine (no sockets)")
struct HubSessionTests {
    let identity = Data(repeating: 7, count: 32)
    var peer: HubSession.Peer { .init(commune: 70, identityKey: identity, isRevoked: false) }
    var origin: Origin { Origin(node: NodeID(bytes: identity)!, epoch: 3) }

    func ok(_ m: WireMessage, id: UInt64 = 9) -> Result<(id: UInt64, message: WireMessage), WireError> { .success((id, m)) }
    func hello(from origin: Origin, release: UInt64 = 1, cursor: UInt64? = 5) -> WireMessage {
        .hello(.init(origin: origin, clockMilliseconds: 0, releaseVersion: release, knowledge: .init(), homeFeedCursor: cursor))
    }
    func batch(_ origin: Origin, _ seq: UInt64) -> Batch {
        Batch(origin: origin, firstSeq: seq, lastSeq: seq, previousID: Data(count: 32), body: Data([1]), signature: Data(count: 64))
    }
    func drops(_ actions: [HubSession.Action]) -> [DropReason] {
        actions.compactMap { if case .drop(let r, _) = $0 { r } else { nil } }
    }

    @Test("HELLO with the enrolled identity: WELCOME (same id), a release offer check and the home feed; the cursor is the site's")
    func helloAccepted() {
        var s = HubSession(peer: peer)
        let actions = s.received(ok(hello(from: origin, release: 4, cursor: 12), id: 41), credit: 4, releasesEnabled: true)
        #expect(actions == [.welcome(origin: origin, id: 41), .offerRelease(siteVersion: 4), .sendHomeFeed])
        #expect(s.state == .ready(origin: origin))
        #expect(s.homeFeedCursor == 12)
    }

    @Test("HELLO naming another identity key is refused WRONG_IDENTITY and changes nothing")
    func helloWrongIdentity() {
        var s = HubSession(peer: peer)
        let other = Origin(node: NodeID(bytes: Data(repeating: 8, count: 32))!, epoch: 1)
        let actions = s.received(ok(hello(from: other), id: 2), credit: 4, releasesEnabled: true)
        guard case .send(.refuse(code: .wrongIdentity, _, _), id: 2)? = actions.first else {
            Issue.record("no WRONG_IDENTITY: \(actions)"); return
        }
        #expect(drops(actions) == [.wrongIdentity])
        #expect(s.state == .awaitingHello)
    }

    @Test("BATCHES before HELLO: REFUSE{PROTOCOL} to that message and counted; nothing merged")
    func batchesBeforeHello() {
        var s = HubSession(peer: peer)
        let actions = s.received(ok(.batches([batch(origin, 1)]), id: 3), credit: 4, releasesEnabled: false)
        guard case .send(.refuse(code: .protocolViolation, _, _), id: 3)? = actions.first else {
            Issue.record("no PROTOCOL refusal: \(actions)"); return
        }
        #expect(drops(actions) == [.batchesBeforeHello])
        #expect(!actions.contains { if case .merge = $0 { true } else { false } })
    }

    @Test("credit is enforced per round: the credit's worth of BATCHES merge, the next is refused, a new round frees it")
    func credit() {
        var s = HubSession(peer: peer)
        _ = s.received(ok(hello(from: origin)), credit: 2, releasesEnabled: false)
        #expect(s.received(ok(.batches([batch(origin, 1)]), id: 10), credit: 2, releasesEnabled: false) == [.merge(id: 10, batches: [batch(origin, 1)])])
        #expect(s.received(ok(.batches([batch(origin, 2)]), id: 11), credit: 2, releasesEnabled: false) == [.merge(id: 11, batches: [batch(origin, 2)])])
        #expect(drops(s.received(ok(.batches([batch(origin, 3)]), id: 12), credit: 2, releasesEnabled: false)) == [.overCredit])
        s.roundEnded()
        #expect(s.uploadsThisRound == 0)
        #expect(s.received(ok(.batches([batch(origin, 3)]), id: 13), credit: 2, releasesEnabled: false) == [.merge(id: 13, batches: [batch(origin, 3)])])
    }

    @Test("CHUNK_REQUEST only after HELLO and only from a hub that serves releases")
    func chunkRequests() {
        var s = HubSession(peer: peer)
        #expect(drops(s.received(ok(.chunkRequest(["ab"])), credit: 4, releasesEnabled: true)) == [.chunkRequestRefused])
        _ = s.received(ok(hello(from: origin)), credit: 4, releasesEnabled: true)
        #expect(drops(s.received(ok(.chunkRequest(["ab"])), credit: 4, releasesEnabled: false)) == [.chunkRequestRefused])
        #expect(s.received(ok(.chunkRequest(["ab", "cd"])), credit: 4, releasesEnabled: true) == [.serveChunks(["ab", "cd"])])
        #expect(s.received(ok(.wholeChunkRequest(["ab"])), credit: 4, releasesEnabled: true) == [.serveWholeChunks(["ab"])])
    }

    @Test("the installed manifest a site names in HELLO is remembered for deltas, and forgotten by a HELLO without it")
    func installedManifestHash() {
        var s = HubSession(peer: peer)
        let hash = Data(repeating: 3, count: 32)
        _ = s.received(
            ok(.hello(.init(origin: origin, clockMilliseconds: 0, releaseVersion: 2, knowledge: .init(), installedManifestHash: hash))),
            credit: 4, releasesEnabled: true)
        #expect(s.installedManifestHash == hash)
        _ = s.received(ok(hello(from: origin)), credit: 4, releasesEnabled: true)
        #expect(s.installedManifestHash == nil)
    }

    @Test("kinds a site may not send are counted unexpected_kind, before and after HELLO")
    func unexpectedKinds() {
        var s = HubSession(peer: peer)
        let kinds: [WireMessage] = [
            .welcome(.init(clockMilliseconds: 0, have: .init(), credit: 1, releaseVersion: 0)),
            .ack(.init(ackedMessageID: 1, have: .init(), credit: 1)), .chunk(hash: "ab", data: Data()),
            .tryLater(seconds: 1, reason: ""), .published(version: 1), .homeFeed(body: Data(), signature: Data()),
        ]
        for k in kinds { #expect(drops(s.received(ok(k), credit: 4, releasesEnabled: true)) == [.unexpectedKind]) }
        _ = s.received(ok(hello(from: origin)), credit: 4, releasesEnabled: true)
        for k in kinds { #expect(drops(s.received(ok(k), credit: 4, releasesEnabled: true)) == [.unexpectedKind]) }
        #expect(s.isReady, "a stray message does not end the session")
    }

    @Test("a message that does not decode is counted by reason; another major version is also told so")
    func undecodable() {
        var s = HubSession(peer: peer)
        #expect(s.received(.failure(.frameCount(3)), credit: 4, releasesEnabled: false) == [.drop(.wrongFrameCount, detail: "\(WireError.frameCount(3))")])
        #expect(drops(s.received(.failure(.payloadTooLarge(9)), credit: 4, releasesEnabled: false)) == [.oversized])
        #expect(drops(s.received(.failure(.outOfRange("first_seq")), credit: 4, releasesEnabled: false)) == [.outOfRange])
        #expect(drops(s.received(.failure(.malformedPayload("Batches")), credit: 4, releasesEnabled: false)) == [.malformed])
        let v2 = s.received(.failure(.unsupportedMajor(2)), credit: 4, releasesEnabled: false)
        #expect(drops(v2) == [.unsupportedVersion])
        #expect(v2.contains { if case .send(.refuse(code: .unsupportedVersion, _, _), _) = $0 { true } else { false } })
    }

    @Test("a revoked site is refused REVOKED on every message; revocation while connected says so once")
    func revocation() {
        var revoked = HubSession(peer: .init(commune: 70, identityKey: identity, isRevoked: true))
        for m in [hello(from: origin), .batches([batch(origin, 1)])] {
            let a = revoked.received(ok(m), credit: 4, releasesEnabled: true)
            #expect(drops(a) == [.revoked])
            #expect(a.contains { if case .send(.refuse(code: .revoked, _, _), _) = $0 { true } else { false } })
        }
        var s = HubSession(peer: peer)
        _ = s.received(ok(hello(from: origin)), credit: 4, releasesEnabled: true)
        let told = s.revoked()
        #expect(drops(told) == [.revoked] && told.count == 2)
        #expect(s.revoked().isEmpty, "told once")
        #expect(s.state == .closed)
        #expect(drops(s.received(ok(.batches([batch(origin, 1)])), credit: 4, releasesEnabled: true)) == [.revoked])
    }

    @Test("a site may upload only its own origin's batches; each other one is refused not_own_origin")
    func ownOrigin() {
        let other = Origin(node: NodeID(bytes: Data(repeating: 9, count: 32))!, epoch: 1)
        let split = peer.ownBatches([batch(origin, 1), batch(other, 1), batch(origin, 2)])
        #expect(split.accepted == [batch(origin, 1), batch(origin, 2)])
        #expect(split.refused.map(\.code) == ["not_own_origin"])
    }

    @Test("every decode failure maps to a documented reason")
    func reasons() {
        let errors: [WireError] = [
            .frameCount(1), .envelopeTooLarge(1), .payloadTooLarge(1), .malformedEnvelope, .unsupportedMajor(2), .unknownKind(99),
            .malformedPayload("x"), .invalidField("x"), .tooManyBatches(1), .tooManyItems("x", 1), .outOfRange("x"),
        ]
        #expect(Set(errors.map { DropReason($0) }) == [.wrongFrameCount, .oversized, .malformed, .unsupportedVersion, .outOfRange])
        #expect(DropReason(rawValue: "over_credit") == .overCredit)
    }
}
