import Foundation
import Merge
import Node
import Testing
import Wire

@Suite("Site session state machine (no sockets)")
struct SiteSessionTests {
    let origin = Origin(node: NodeID(bytes: Data(repeating: 7, count: 32))!, epoch: 1)

    func welcome(have: UInt64, credit: UInt32 = 2) -> WireMessage {
        .welcome(.init(clockMilliseconds: 5_000, have: VersionVector([origin: have]), credit: credit, releaseVersion: 1))
    }

    @Test("connect sends HELLO; WELCOME starts uploading after what the hub has, within credit")
    func helloWelcome() {
        var s = SiteSession(origin: origin)
        let hello = s.connected(now: 1_000, knowledge: VersionVector([origin: 9]), releaseVersion: 1)
        guard case .send(.hello(let h), _) = hello.first else { Issue.record("no hello"); return }
        #expect(h.origin == origin && h.knowledge[origin] == 9)
        #expect(s.state == .awaitingWelcome(since: 1_000))
        let actions = s.received(welcome(have: 4), now: 1_100)
        #expect(actions == [.upload(after: VersionVector([origin: 4]), messages: 2)])
        #expect(s.clockOffset == 3_900)
        #expect(s.lastHeard == 1_100)
    }

    @Test("in-flight batches are not offered again; an ACK frees credit and advances")
    func creditAndAck() {
        var s = SiteSession(origin: origin)
        _ = s.connected(now: 0, knowledge: .init(), releaseVersion: 0)
        _ = s.received(welcome(have: 0, credit: 1), now: 0)
        let id = s.uploadMessageID()
        s.didSend(id: id, upTo: VersionVector([origin: 10]), now: 0)
        #expect(s.localChangesAvailable().isEmpty)  // no credit left
        let after = s.received(.ack(.init(ackedMessageID: id, have: VersionVector([origin: 10]), credit: 1)), now: 10)
        #expect(after == [.upload(after: VersionVector([origin: 10]), messages: 1)])
        #expect(s.hubHas[origin] == 10 && s.unacknowledgedMessages == 0)
    }

    @Test("a lost ACK: after the timeout the unacknowledged batches are offered again from what the hub has")
    func ackTimeout() {
        var s = SiteSession(origin: origin, ackTimeout: 1_000)
        _ = s.connected(now: 0, knowledge: .init(), releaseVersion: 0)
        _ = s.received(welcome(have: 3), now: 0)
        let id = s.uploadMessageID()
        s.didSend(id: id, upTo: VersionVector([origin: 8]), now: 0)
        #expect(s.tick(now: 500, knowledge: .init(), releaseVersion: 0).isEmpty)
        #expect(s.tick(now: 1_000, knowledge: .init(), releaseVersion: 0) == [.upload(after: VersionVector([origin: 3]), messages: 2)])
    }

    @Test("BUSY: the session waits the hub's (clamped) delay on the open link, then says HELLO again — never silent")
    func busyBacksOffThenHelloAgain() {
        var s = SiteSession(origin: origin)
        _ = s.connected(now: 0, knowledge: .init(), releaseVersion: 0)
        _ = s.received(welcome(have: 0), now: 10)
        #expect(s.received(.refuse(code: .busy, reason: "full", retryAfterSeconds: 5), now: 1_000).isEmpty)
        #expect(s.state == .backingOff(until: 6_000))
        #expect(s.tick(now: 5_999, knowledge: .init(), releaseVersion: 0).isEmpty)
        let again = s.tick(now: 6_000, knowledge: .init(), releaseVersion: 0)
        guard case .send(.hello, _)? = again.first else { Issue.record("no HELLO after BUSY: \(again)"); return }
        // A hostile delay of UInt32.max is clamped to an hour, and 0 to a second.
        _ = s.received(welcome(have: 0), now: 6_010)
        _ = s.received(.refuse(code: .busy, reason: "", retryAfterSeconds: .max), now: 7_000)
        #expect(s.state == .backingOff(until: 7_000 + 3_600_000))
    }

    @Test("a disconnect forgets what was in flight; the next connection starts with HELLO again")
    func reconnect() {
        var s = SiteSession(origin: origin)
        _ = s.connected(now: 0, knowledge: .init(), releaseVersion: 0)
        _ = s.received(welcome(have: 3), now: 0)
        s.didSend(id: s.uploadMessageID(), upTo: VersionVector([origin: 8]), now: 0)
        s.disconnected()
        #expect(s.state == .disconnected && s.unacknowledgedMessages == 0 && s.sentUpTo[origin] == 3)
        #expect(s.localChangesAvailable().isEmpty)  // nothing is sent before WELCOME
        guard case .send(.hello, _)? = s.connected(now: 10, knowledge: .init(), releaseVersion: 0).first else {
            Issue.record("no hello"); return
        }
    }

    @Test("a missing WELCOME is asked for again")
    func welcomeTimeout() {
        var s = SiteSession(origin: origin, welcomeTimeout: 1_000)
        _ = s.connected(now: 0, knowledge: .init(), releaseVersion: 0)
        #expect(s.tick(now: 999, knowledge: .init(), releaseVersion: 0).isEmpty)
        guard case .send(.hello, _)? = s.tick(now: 1_000, knowledge: .init(), releaseVersion: 0).first else {
            Issue.record("no second hello"); return
        }
    }

    @Test("a refusal stops the session for good; BUSY only backs off")
    func refusals() {
        var s = SiteSession(origin: origin)
        _ = s.connected(now: 0, knowledge: .init(), releaseVersion: 0)
        #expect(s.received(.refuse(code: .busy, reason: "later", retryAfterSeconds: 30), now: 0).isEmpty)
        #expect(s.state == .backingOff(until: 30_000))
        let stop = s.received(.refuse(code: .revoked, reason: "revoked", retryAfterSeconds: 0), now: 0)
        #expect(stop == [.stop(reason: "revoked")])
        #expect(s.connected(now: 5, knowledge: .init(), releaseVersion: 0).isEmpty)
    }

    @Test("a refused message (malformed, out of protocol) pauses at least 30 s and says HELLO again; it never stops the site")
    func protocolRefusalPauses() {
        for code in [WireMessage.RefuseCode.protocolViolation, .malformed] {
            var s = SiteSession(origin: origin)
            _ = s.connected(now: 0, knowledge: .init(), releaseVersion: 0)
            #expect(s.received(.refuse(code: code, reason: "send HELLO first", retryAfterSeconds: 0), now: 1_000).isEmpty)
            #expect(s.state == .backingOff(until: 31_000))
            #expect(s.tick(now: 30_999, knowledge: .init(), releaseVersion: 0).isEmpty)
            guard case .send(.hello, _)? = s.tick(now: 31_000, knowledge: .init(), releaseVersion: 0).first else {
                Issue.record("no HELLO after the pause for \(code)"); continue
            }
            // A longer delay asked by the hub is honoured (clamped to an hour).
            _ = s.received(.refuse(code: code, reason: "", retryAfterSeconds: 120), now: 40_000)
            #expect(s.state == .backingOff(until: 160_000))
        }
    }

    @Test("messages that are not for a site, or out of turn, change nothing")
    func outOfTurn() {
        var s = SiteSession(origin: origin)
        #expect(s.received(.ack(.init(ackedMessageID: 1, have: VersionVector([origin: 99]), credit: 9)), now: 0).isEmpty)
        #expect(s.hubHas == VersionVector())
        #expect(s.received(.batches([]), now: 0).isEmpty)
        #expect(s.received(welcome(have: 5), now: 0).isEmpty)  // WELCOME without HELLO
    }
}
