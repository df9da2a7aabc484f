import Foundation
import Merge
import Model
import Node
import Release
import Sodium
import Store
import SwiftProtobuf
import TestSupport
import Testing
import Transport
@testable import Wire

extension SessionFuzzTests {
    /// The session fuzzer's findings as minimal inputs, replayed on every run: each is one or two
    /// messages from an authenticated peer that trapped, stopped or wedged a hub or a site. Each
    /// case runs against a fresh hub (or site) and then checks that it still works: a trap kills the
    /// test process (the crash handler prints the case, see ``FuzzJournal``). Nested in
    /// ``SessionFuzzTests`` so that it never runs at the same time as the fuzzer (one journal).
    @Suite("Session fuzzer findings, replayed as minimal inputs")
    struct Findings {
        enum HubInput: String, CaseIterable, CustomStringConvertible, Sendable {
            case helloHomeFeedCursor2e63 = "HELLO wants_home_feed=true home_feed_cursor=2^63"
            case batchRangeTo2e63 = "BATCHES own signed batch claiming seq 1…2^63"
            case batchRangeTo2e64 = "BATCHES own signed batch claiming seq 1…2^64-1"
            case ownBatchAt2e63 = "BATCHES own signed batch at seq 2^63…2^63 (one change)"
            case enrollmentLength2e63 = "BATCHES own signed batch (new epoch, seq 1) of one enrollment change with causal length 2^63"
            case adminRelease2e63 = "admin RELEASE_OFFER, k-of-n signed, version 2^63, no files"
            case adminRelease2e53 = "admin RELEASE_OFFER, k-of-n signed, version 2^53, no files"
            var description: String { rawValue }
        }

        enum SiteInput: String, CaseIterable, CustomStringConvertible, Sendable {
            case welcomeClockMax = "WELCOME clock_ms=Int64.max"
            case welcomeClockMin = "WELCOME clock_ms=Int64.min"
            case welcomeClock25h = "WELCOME clock_ms=now+25h"
            case welcomeHave2e64 = "WELCOME have=[the site's origin: 2^64-1]"
            case ackHave2e64 = "ACK have=[the site's origin: 2^64-1] (after an honest WELCOME)"
            case homeFeedFirstSeq2e64 = "HOME_FEED signed by the pinned hub, first_seq=2^64-1, 2 entries"
            case homeFeedEnrollment2e63 = "HOME_FEED signed by the pinned hub: an enrollment with causal length 2^63, then a valid entry"
            case release2e64 = "RELEASE_OFFER, k-of-n signed, version 2^64-1, no files"
            case release2e53 = "RELEASE_OFFER, k-of-n signed, version 2^53, no files"
            case refuseBusy = "REFUSE{BUSY, retry_after_s=1} on a live connection"
            var description: String { rawValue }
        }

        /// The fixture's release 2 as an admin-signed offer of `version` with no files (complete at once).
        static func release(_ fx: ReleaseFixture, version: UInt64) throws -> Hocvu_Wire_V1_ReleaseOffer {
            var m = try Manifest.decode(try fx.build(version: 2).manifestBytes())
            m.version = version
            m.curriculum.version = version
            m.files = []
            for i in m.curriculum.courses.indices {
                for j in m.curriculum.courses[i].lessons.indices { m.curriculum.courses[i].lessons[j].files = [] }
            }
            let bytes = m.encoded()
            var p = Hocvu_Wire_V1_ReleaseOffer()
            p.manifest = bytes
            p.signatures = fx.admins.prefix(fx.trust.threshold).map {
                let s = ReleaseSignature.sign(bytes, with: $0.signing)
                var x = Hocvu_Wire_V1_ReleaseSignature()
                x.key = Data(hex: s.key) ?? Data()
                x.signature = Data(hex: s.signature) ?? Data()
                return x
            }
            return p
        }

        static func batch(_ key: SigningKeyPair, epoch: UInt64, first: UInt64, last: UInt64, changes: [Change]) -> Hocvu_Wire_V1_Batches {
            let unsigned = Batch(
                origin: Origin(node: NodeID(bytes: key.publicKey)!, epoch: epoch), firstSeq: first, lastSeq: last,
                previousID: Batch.zeroID, body: Data(ChangeCodec.encode(changes)), signature: Data(count: 64))
            var x = HostileSite.raw(unsigned)
            x.signature = key.sign(unsigned.header)
            var p = Hocvu_Wire_V1_Batches()
            p.batches = [x]
            return p
        }

        static func enrollment(length: UInt64, learner: String) -> Change {
            Change(
                hlc: HLCTimestamp(milliseconds: UInt64(NodeStore.systemNow()), counter: 0),
                record: .enrollment(EnrollmentRecord(learnerID: learner, courseID: "ksn-101", length: length)))
        }

        /// `HOCVU_FUZZ_ONLY=text` runs only the cases whose description contains `text` (each trap
        /// ends the test process, so this is how to see every one on a build that has several).
        static func selected(_ input: some CustomStringConvertible) -> Bool {
            guard let only = ProcessInfo.processInfo.environment["HOCVU_FUZZ_ONLY"], !only.isEmpty else { return true }
            return input.description.contains(only)
        }

        static func report(_ what: String) -> Comment {
            Comment(rawValue: "\(what)\n--- messages ---\n\(FuzzJournal.contents())")
        }

        @Test("the hub keeps running and still serves an honest site after", arguments: HubInput.allCases)
        func hub(_ input: HubInput) throws {
            guard Self.selected(input) else { return }
            FuzzJournal.begin("session fuzzer finding (hub): \(input)")
            defer { FuzzJournal.end() }
            let tmp = try TemporaryDirectory(prefix: "hocvu-crasher-hub")
            defer { tmp.remove() }
            let fx = try ReleaseFixture(root: tmp.path, mediaBytes: 16 << 10)
            let fleet = try fuzzFleet(fx)
            defer { fleet.shutdown() }
            let honest = fleet.sites[0], hostile = fleet.sites[1]
            let context = try ZMQContext()
            let raw = try rawClient(fleet, hostile, context: context)
            defer { raw.close() }
            let admin = try ZMQSocket(context, .dealer)
            defer { admin.close() }
            let keys = fx.admins[0].transport
            try admin.makeCurveClient(publicKey: keys.publicKey, secretKey: keys.secretKey, serverKey: fleet.hubKeys.publicKey)
            try admin.connect(fleet.endpoint)

            let origin = try hostile.origin
            var hello = Hocvu_Wire_V1_Hello()
            hello.node = hostile.identity.publicKey
            hello.epoch = origin.epoch
            hello.clockMs = NodeStore.systemNow()
            let learner = Identity.learnerID(nationalID: HostileChanges.nationalID(1))
            let change = Self.enrollment(length: 1, learner: learner)
            var messages: [(FuzzMessage, ZMQSocket)] = [(Raw.message(.hello, id: 1, Raw.serialize(hello), label: "{plausible}"), raw)]
            func batches(_ p: Hocvu_Wire_V1_Batches) { messages.append((Raw.message(.batches, id: 2, Raw.serialize(p), label: input.rawValue), raw)) }
            switch input {
            case .helloHomeFeedCursor2e63:
                hello.wantsHomeFeed = true
                hello.homeFeedCursor = 1 << 63
                messages = [(Raw.message(.hello, id: 1, Raw.serialize(hello), label: input.rawValue), raw)]
            case .batchRangeTo2e63:
                batches(Self.batch(hostile.identity, epoch: origin.epoch, first: 1, last: 1 << 63, changes: [change]))
            case .batchRangeTo2e64:
                batches(Self.batch(hostile.identity, epoch: origin.epoch, first: 1, last: UInt64.max, changes: [change]))
            case .ownBatchAt2e63:
                batches(Self.batch(hostile.identity, epoch: origin.epoch, first: 1 << 63, last: 1 << 63, changes: [change]))
            case .enrollmentLength2e63:
                batches(Self.batch(hostile.identity, epoch: 0x5EED, first: 1, last: 1, changes: [Self.enrollment(length: 1 << 63, learner: learner)]))
            case .adminRelease2e63, .adminRelease2e53:
                let offer = try Self.release(fx, version: input == .adminRelease2e63 ? 1 << 63 : 1 << 53)
                messages = [(Raw.message(.releaseOffer, id: 1, Raw.serialize(offer), label: input.rawValue), admin)]
            }
            for (m, socket) in messages {
                FuzzJournal.note("→ hub  " + m.journalLine)
                let before = fleet.hub.stats.messagesReceived
                _ = try socket.send(m.frames)
                _ = eventually(3) { fleet.hub.stats.messagesReceived > before || fleet.hub.hasFinished }
                usleep(200_000)
            }
            #expect(!fleet.hub.hasFinished && fleet.hub.isAlive, Self.report("the hub's loop stopped after: \(input)"))
            try recordResults(honest.store, commune: honest.commune, first: 0, count: 2)
            try fleet.startSite(honest)
            #expect(
                try eventually(10) { try fleet.hubHasAll(of: honest) },
                Self.report("an honest site could not sync with the hub after: \(input) (site status: \(String(describing: honest.client?.status)))"))
        }

        @Test("the site keeps running, keeps its clock and still syncs after", arguments: SiteInput.allCases)
        func site(_ input: SiteInput) throws {
            guard Self.selected(input) else { return }
            FuzzJournal.begin("session fuzzer finding (site): \(input)")
            defer { FuzzJournal.end() }
            let tmp = try TemporaryDirectory(prefix: "hocvu-crasher-site")
            defer { tmp.remove() }
            let fx = try ReleaseFixture(root: tmp.path, mediaBytes: 16 << 10)
            let rig = try SiteRig(tmp: tmp, fx: fx)
            defer { rig.fake.close() }
            let client = try SiteClient(store: rig.site.store, configuration: rig.config, logger: JournalLogHandler.logger("site"))
            try client.start()
            defer { client.stop() }
            let hub = try HostileHub(
                fake: rig.fake, site: rig.site, identity: rig.hubIdentity, fixture: fx, release: try fx.build(version: 2), feed: rig.feed,
                settings: FuzzSettings(defaultRounds: 1))
            hub.client = client
            guard try hub.awaitHello(seconds: 5) else {
                Issue.record(Self.report("the site never said HELLO"))
                return
            }
            let origin = try rig.site.origin
            let now = NodeStore.systemNow()
            func welcome(clock: Int64 = now, have: [Hocvu_Wire_V1_OriginSeq] = []) -> FuzzMessage {
                var p = Hocvu_Wire_V1_Welcome()
                p.clockMs = clock
                p.have = have
                p.credit = 4
                return Raw.message(.welcome, id: 1, Raw.serialize(p), label: "{clock_ms=\(Boundary.show(clock)) have=\(Raw.show(have, names: [:]))}")
            }
            func feed(first: UInt64, _ entries: [(node: Data, change: Data)]) -> FuzzMessage {
                var b = Hocvu_Wire_V1_HomeFeedBody()
                b.commune = 70
                b.firstSeq = first
                b.entries = entries.map {
                    var e = Hocvu_Wire_V1_HomeFeedEntry()
                    e.node = $0.node
                    e.change = $0.change
                    return e
                }
                var p = Hocvu_Wire_V1_HomeFeed()
                p.body = Raw.serialize(b)
                p.signature = rig.hubIdentity.sign(Data("hocvu home feed v1\n".utf8) + p.body)
                return Raw.message(.homeFeed, id: 0, Raw.serialize(p), label: "{first_seq=\(Boundary.show(first)) entries=\(entries.count)}")
            }
            let top = Raw.originSeq(node: origin.node.bytes, epoch: origin.epoch, seq: UInt64.max)
            var checkFeedCursor: UInt64?
            switch input {
            case .welcomeClockMax: hub.send(welcome(clock: Int64.max))
            case .welcomeClockMin: hub.send(welcome(clock: Int64.min))
            case .welcomeClock25h: hub.send(welcome(clock: now + 25 * 3_600_000))
            case .welcomeHave2e64: hub.send(welcome(have: [top]))
            case .ackHave2e64:
                hub.send(welcome())
                client.wake()
                hub.listen(milliseconds: 1_500)
                var p = Hocvu_Wire_V1_Ack()
                p.ackedMessageID = hub.pendingBatches.first?.id ?? 2
                p.have = [top]
                p.credit = 4
                hub.send(Raw.message(.ack, id: 0, Raw.serialize(p), label: "{have=[site: 2^64-1]}"))
            case .homeFeedFirstSeq2e64:
                hub.send(welcome())
                hub.send(feed(first: UInt64.max, Array(rig.feed.prefix(2))))
            case .homeFeedEnrollment2e63:
                hub.send(welcome())
                let poisoned = Data(ChangeCodec.encode([Self.enrollment(length: 1 << 63, learner: Identity.learnerID(nationalID: "001900050000"))]))
                hub.send(feed(first: hub.helloCursor + 1, [(rig.feed[0].node, poisoned), rig.feed[0]]))
                checkFeedCursor = hub.helloCursor + 2
            case .refuseBusy:
                hub.send(welcome())
                var p = Hocvu_Wire_V1_Refuse()
                p.code = .busy
                p.reason = "at capacity"
                p.retryAfterS = 1
                hub.send(Raw.message(.refuse, id: 0, Raw.serialize(p), label: input.rawValue))
                // The connection stays up (heartbeats keep it so): the site must come back by itself.
                var again = false
                let end = Date().addingTimeInterval(6)
                while !again, Date() < end {
                    again = try rig.fake.receive(milliseconds: 50).contains { hub.heard($0.routing, $0.frames) }
                }
                #expect(again, Self.report("the site went silent after REFUSE{BUSY}: no HELLO within 6 s on a connection that stays up"))
            case .release2e64, .release2e53:
                hub.send(welcome())
                let offer = try Self.release(fx, version: input == .release2e64 ? UInt64.max : 1 << 53)
                hub.send(Raw.message(.releaseOffer, id: 0, Raw.serialize(offer), label: input.rawValue))
            }
            hub.listen(milliseconds: 300)
            #expect(!client.hasFinished && client.isAlive, Self.report("the site's loop stopped after: \(input)"))
            let offset = rig.site.store.clockOffset
            #expect(offset != Int64.min && abs(offset) <= 86_400_000, Self.report("the site adopted a clock offset of \(offset) ms after: \(input)"))
            if let want = checkFeedCursor {
                #expect(
                    eventually(3) { (client.status.homeFeedCursor ?? 0) >= want },
                    Self.report("the home feed is stuck at \(client.status.homeFeedCursor ?? 0) (want \(want)): the entry after the bad one never applies"))
            }
            try recordOnSiteClock(rig.site.store, commune: 70, first: 9_000)
            client.wake()
            let synced = try hub.honestSession(client: client, seconds: 8)
            #expect(hub.refusedByHubCodec.isEmpty, Self.report("the site now sends what a real hub's decoder refuses: \(hub.refusedByHubCodec.first ?? "")"))
            #expect(synced, Self.report("the site did not upload its results to an honest hub after: \(input)"))
        }
    }
}
