import Foundation
import Merge
import Model
import Sodium
import Store
import Testing

/// A site with several hubs (docs/multi-hub.md): each hub numbers home feeds its own way, so the
/// cursor belongs to the hub endpoint it came from.
@Suite("Home-feed cursor per hub endpoint")
struct HomeFeedSourceTests {
    @Test("a cursor counts only for its endpoint; another hub's feed starts from 0; an old cursor is the first endpoint's")
    func cursorPerSource() throws {
        let site = try Replica()
        let other = try Replica()
        // Entries another site recorded: learners of commune 70, this site's.
        var entries = [HomeFeedEntry]()
        for i in 0..<3 {
            let id = try other.store.register(100 + i, commune: 70)
            _ = id
        }
        _ = try other.store.sealPending()
        let batch = try other.store.batches(after: VersionVector())
        let changes = try batch.flatMap { try ChangeCodec.decode($0.body) }
        for (i, c) in changes.enumerated() {
            entries.append(HomeFeedEntry(seq: UInt64(i + 1), node: other.store.node, change: Data(ChangeCodec.encode([c]))))
        }
        // A single-hub site of old: a cursor with no source.
        var r = try site.store.applyHomeFeed(Array(entries.prefix(2)), commune: 70)
        #expect(r.cursor == 2 && r.merged == 2)
        #expect(try site.store.homeFeedCursor(source: "tcp://a:7400", isPrimary: true) == 2)  // the first endpoint's
        #expect(try site.store.homeFeedCursor(source: "tcp://b:7400", isPrimary: false) == 0)
        // Hub B numbers the same feed its own way: from 0, nothing skipped, nothing merged twice.
        r = try site.store.applyHomeFeed(entries, commune: 70, source: ("tcp://b:7400", false))
        #expect(r.cursor == 3 && r.merged == 3 && r.alreadyHeld == 0)
        #expect(try site.store.homeFeedCursor(source: "tcp://b:7400", isPrimary: false) == 3)
        #expect(try site.store.homeFeedCursor(source: "tcp://a:7400", isPrimary: true) == 0)  // now B's numbering
        // Back on A: its feed from 0 again, already-held entries re-merge as no-ops.
        r = try site.store.applyHomeFeed(Array(entries.prefix(1)), commune: 70, source: ("tcp://a:7400", true))
        #expect(r.cursor == 1 && r.alreadyHeld == 0)
        #expect(try site.store.attemptsCountForTests("learner") == 3)
    }
}
