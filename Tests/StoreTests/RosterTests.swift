import Foundation
import Merge
import Model
import Sodium
import Store
import TestSupport
import Testing

@Suite("Rosters: the denominator, written by the hub only, routed to each commune's own site")
struct RosterTests {
    static func csvLine(_ i: Int, commune: Int, role: Role = .civilServant, status: String = "") -> String {
        "\(nationalID(i)),\"Trần Thị \(i), cán bộ\",\(role.rawValue),UBND xã,\(commune),\(status)"
    }

    @Test("CSV and JSON Lines parse alike; bad rows are named by line and reason, never echoed")
    func parsing() {
        let csv = "\u{FEFF}national_id,full_name,role,unit,commune_code,status\n"
            + Self.csvLine(1, commune: 70) + "\n"
            + "123,Nguyễn A,civil_servant,UBND,70,\n"  // short national ID
            + "\(nationalID(2)),Nguyễn B,mayor,UBND,70,\n"  // unknown role
            + "\(nationalID(3)),\"unclosed,civil_servant,UBND,70,\n"
            + Self.csvLine(1, commune: 73) + "\n"  // the same person twice in one file
            + Self.csvLine(4, commune: 70, status: "removed") + "\n"
        let (rows, errors) = RosterImport.parse(csv, format: .csv)
        #expect(rows.map(\.line) == [2, 7])
        #expect(rows[0].entry == RosterEntry(fullName: "Trần Thị 1, cán bộ", role: .civilServant, unit: "UBND xã", commune: 70))
        #expect(rows[1].entry.active == false)
        #expect(errors.map(\.line) == [3, 4, 5, 6])
        #expect(errors[0].reason.contains("12 digits") && errors[1].reason.contains("role must be one of"))
        for e in errors { #expect(!e.description.contains("0012") && !e.description.contains("Nguyễn")) }

        let jsonl = """
            {"national_id":"\(nationalID(1))","full_name":"Trần Thị 1, cán bộ","role":"civil_servant","unit":"UBND xã","commune_code":70}
            not json
            {"national_id":"\(nationalID(5))","full_name":"A","role":"na_deputy","unit":"Đoàn ĐBQH","commune_code":"x"}
            """
        let (jrows, jerrors) = RosterImport.parse(jsonl, format: .jsonLines)
        #expect(jrows.map(\.entry) == [rows[0].entry])
        #expect(jerrors.map(\.line) == [2, 3])

        let (none, headerError) = RosterImport.parse("national_id,full_name\n", format: .csv)
        #expect(none.isEmpty && headerError.first?.reason.contains("role") == true)
    }

    @Test("the rate is certified roster members ÷ roster size, per role; learners on no roster are apart")
    func rates() throws {
        let hub = try Replica()
        defer { hub.dir.remove() }
        let s = hub.store
        let text = "national_id,full_name,role,unit,commune_code,status\n"
            + (1...4).map { Self.csvLine($0, commune: 70) }.joined(separator: "\n") + "\n"
            + Self.csvLine(5, commune: 70, role: .communeCouncilDelegate) + "\n"
        let report = try s.importRoster(RosterImport.parse(text, format: .csv).rows)
        #expect(report.added == 5 && report.errors.isEmpty && report.communes == [70])

        // Person 1 (on the roster) completes and is certified; person 9 (on no roster) too.
        let onRoster = try s.register(1, commune: 70)
        let offRoster = try s.register(9, commune: 70)
        let t = hub.clock.now
        for id in [onRoster, offRoster] {
            try NationalReportTests().completeCourse(s, id, at: t)
            try s.record([.issueCertificate(learnerID: id, courseID: "ksn-101")])
        }
        _ = try s.register(2, commune: 70)
        try s.record([.enroll(learnerID: Identity.learnerID(nationalID: nationalID(2)), courseID: "ksn-101")])

        let c70 = try #require(try s.nationalReport().commune(70)).figures
        #expect(c70.roster == 5 && c70.rosterCertified == 1 && c70.rosterEnrolled == 2)
        #expect(c70.certifiedShare == 0.2)
        #expect(c70.offRoster == 1 && c70.offRosterCertified == 1 && c70.learners == 3 && c70.certified == 2)
        #expect(c70.byRole["civil_servant"]?.roster == 4 && c70.byRole["civil_servant"]?.rosterCertified == 1)
        #expect(c70.byRole["commune_council_delegate"]?.roster == 1)
        #expect(c70.status(of: NationalReport.targets[0]) == .notMet)
        let national = try s.nationalReport().national
        #expect(national.roster == 5 && national.rosterCertified == 1)

        // The commune operator's list: names with their stage.
        let members = try s.rosterMembers(commune: 70)
        #expect(members.count == 5)
        #expect(members.filter { $0.stage == .certified }.count == 1)
        #expect(members.filter { $0.stage == .enrolled }.count == 1)
        #expect(members.filter { $0.stage == .notStarted }.count == 3)

        // The same file again writes nothing; a removal and a move update every figure.
        hub.clock.advance(1_000)
        let again = try s.importRoster(RosterImport.parse(text, format: .csv).rows)
        #expect(again.unchanged == 5 && again.added + again.changed + again.removed == 0)
        let edit = "national_id,full_name,role,unit,commune_code,status\n"
            + Self.csvLine(1, commune: 73) + "\n" + Self.csvLine(3, commune: 70, status: "removed") + "\n"
        let moved = try s.importRoster(RosterImport.parse(edit, format: .csv).rows)
        #expect(moved.changed == 1 && moved.removed == 1 && moved.communes == [70, 73])
        let after = try s.nationalReport()
        #expect(after.commune(70)?.figures.roster == 3 && after.commune(70)?.figures.rosterCertified == 0)
        #expect(after.commune(73)?.figures.roster == 1 && after.commune(73)?.figures.rosterCertified == 1)
        #expect(after.national.roster == 4)

        // Facts rebuilt from scratch give the same figures; a rebuild a killed start left owed is
        // done at the next open (the need is durable), never skipped.
        #expect(try hub.reopen().nationalReport().national == after.national)
        try s.wipeFactsAsAnInterruptedMigrationForTests()
        #expect(try s.nationalReport().national.roster == 0)
        #expect(try hub.reopen().nationalReport().national == after.national)

        // The commune left and the commune joined both hear of the move; commune 70 hears of the removal.
        #expect(try s.homeFeed(commune: 73, after: 0).count == 1)
        #expect(try s.homeFeed(commune: 70, after: 0).count == 5 + 2)
    }

    @Test("a roster entry from anyone but the hub is set aside on every replica")
    func onlyTheHubWritesRosters() throws {
        let hub = try Replica()
        let site = try Replica()
        defer { hub.dir.remove(); site.dir.remove() }
        let forger = RemoteSigner()
        let entry = RosterEntry(fullName: "Giả Mạo", role: .civilServant, unit: "UBND", commune: 70)
        let forged = Change(
            hlc: HLCTimestamp(milliseconds: UInt64(hub.clock.now), counter: 0),
            record: .roster(RosterChange(learnerID: Identity.learnerID(nationalID: nationalID(7)), nationalID: nationalID(7), entry: entry)))
        // At the hub: a site's batch carrying a roster entry.
        let applied = try hub.store.apply([forger.batch([forged])])
        #expect(applied.quarantinedChanges == 1 && applied.mergedChanges == 0)
        #expect(try hub.store.quarantine().map(\.reasonCode) == ["roster_not_from_hub"])
        #expect(try hub.store.nationalReport().national.roster == 0)

        // Stamped past the clock's drift bound, it is still refused for who wrote it, not set aside
        // as clock_ahead (which a later retry would merge once the clock caught up).
        let ahead = Change(
            hlc: HLCTimestamp(milliseconds: UInt64(hub.clock.now + 600_000), counter: 0),
            record: .roster(RosterChange(learnerID: Identity.learnerID(nationalID: nationalID(8)), nationalID: nationalID(8), entry: entry)))
        let later = try hub.store.apply([forger.batch([ahead], first: 2, previous: forger.batch([forged]).id)])
        #expect(later.quarantinedChanges == 1)
        #expect(try hub.store.quarantine().map(\.reasonCode) == ["roster_not_from_hub", "roster_not_from_hub"])
        hub.clock.advance(3_600_000)
        _ = try hub.store.retryQuarantine()
        #expect(try hub.store.nationalReport().national.roster == 0)

        // At a site: a home-feed entry recorded by another node than the pinned hub.
        let hubNode = NodeID(bytes: hub.key.publicKey)!
        let body = Data(ChangeCodec.encode([forged]))
        let fromForger = HomeFeedEntry(seq: 1, node: forger.origin.node, change: body)
        var r = try site.store.applyHomeFeed([fromForger], commune: 70, hub: hubNode)
        #expect(r.quarantined == 1 && r.merged == 0)
        // The same entry recorded by the hub merges.
        r = try site.store.applyHomeFeed([HomeFeedEntry(seq: 2, node: hubNode, change: body)], commune: 70, hub: hubNode)
        #expect(r.merged == 1)
        #expect(try site.store.rosterMembers(commune: 70).map(\.fullName) == ["Giả Mạo"])
        // A feed for another commune is refused whole once the site knows its own.
        r = try site.store.applyHomeFeed([HomeFeedEntry(seq: 3, node: hubNode, change: body)], commune: 73, hub: hubNode)
        #expect(r.otherCommune == 73 && r.merged == 0)
        #expect(try site.store.siteCommune() == 70)
    }

    @Test("roster entries merge as one last-writer-wins register: any order, same state and digest")
    func convergence() throws {
        var rng = SeededGenerator(seed: 42)
        let hubKey = SigningKeyPair.generate()
        let hubNode = NodeID(bytes: hubKey.publicKey)!
        let communes = [70, 73, 4]
        var changes = [Change]()
        for i in 0..<60 {
            let person = Int.random(in: 1...8, using: &rng)
            let entry = RosterEntry(
                fullName: "Người \(Int.random(in: 1...3, using: &rng))", role: Role.allCases.randomElement(using: &rng)!,
                unit: "UBND", commune: communes.randomElement(using: &rng)!, active: Bool.random(using: &rng))
            changes.append(Change(
                hlc: HLCTimestamp(milliseconds: 1_767_225_600_000 + UInt64(Int.random(in: 0...20, using: &rng)), counter: UInt16(i)),
                record: .roster(RosterChange(learnerID: Identity.learnerID(nationalID: nationalID(person)), nationalID: nationalID(person), entry: entry))))
        }
        var reference = ReplicaState()
        for c in changes { reference.apply(c, from: hubNode) }
        var digests = Set<Data>()
        for round in 0..<3 {
            let site = try Replica()
            defer { site.dir.remove() }
            let order = round == 0 ? changes : changes.shuffled(using: &rng)
            let entries = order.enumerated().map { i, c in
                HomeFeedEntry(seq: UInt64(i + 1), node: hubNode, change: Data(ChangeCodec.encode([c])))
            }
            _ = try site.store.applyHomeFeed(entries, hub: hubNode)
            digests.insert(try site.store.stateDigest())
            let active = reference.rosters.values.filter { $0.entry.value.active && $0.entry.value.commune == 70 }
            #expect(try site.store.rosterMembers(commune: 70).count == active.count)
        }
        #expect(digests == [Blake2b.hash(reference.canonicalBytes())])
    }
}

@Suite("Trend: a daily snapshot of the totals, per unit")
struct TrendTests {
    @Test("each day keeps its own totals; communes write only on change and read forward")
    func dailySnapshots() throws {
        #expect(NodeStore.vietnamDay(1_767_225_600_000) == "2026-01-01")  // 07:00 in Hà Nội
        #expect(NodeStore.vietnamDay(1_767_225_600_000 - 7 * 3_600_000 - 1) == "2025-12-31")  // 23:59:59.999 the day before
        #expect(NodeStore.vietnamTime(1_767_225_600_000) == "2026-01-01T07:00:00+07:00")
        #expect(NodeStore.vietnamTime(1_767_225_600_000 - 7 * 3_600_000 - 1) == "2025-12-31T23:59:59+07:00")
        #expect(NodeStore.vietnamTime(1_709_260_200_000) == "2024-03-01T09:30:00+07:00")  // after a leap day
        #expect(NodeStore.vietnamTime(-1) == "1970-01-01T06:59:59+07:00")
        let hub = try Replica()
        defer { hub.dir.remove() }
        let s = hub.store
        let text = "national_id,full_name,role,unit,commune_code,status\n"
            + (1...4).map { RosterTests.csvLine($0, commune: 70) }.joined(separator: "\n") + "\n"
            + RosterTests.csvLine(5, commune: 73) + "\n"
        _ = try s.importRoster(RosterImport.parse(text, format: .csv).rows)
        #expect(try s.snapshotDailyTotals() > 0)
        hub.clock.advance(86_400_000)
        let id = try s.register(1, commune: 70)
        try NationalReportTests().completeCourse(s, id, at: hub.clock.now)
        try s.record([.issueCertificate(learnerID: id, courseID: "ksn-101")])
        try s.snapshotDailyTotals()
        try s.snapshotDailyTotals()  // again the same day: replaced, not doubled
        hub.clock.advance(86_400_000)
        try s.snapshotDailyTotals()

        let nation = try s.trend(.nation)
        #expect(nation.map(\.day) == ["2026-01-01", "2026-01-02", "2026-01-03"])
        #expect(nation.map(\.roster) == [5, 5, 5] && nation.map(\.rosterCertified) == [0, 1, 1])
        #expect(try s.trend(.province(1)).map(\.rosterCertified) == [0, 1, 1])
        let c73 = try s.trend(.commune(73))
        #expect(c73.map(\.roster) == [1, 1, 1] && c73.map(\.rosterCertified) == [0, 0, 0])
        #expect(try s.trend(.commune(70)).map(\.rosterCertified) == [0, 1, 1])
        #expect(try s.trend(.commune(4)).map(\.roster) == [0, 0, 0])
    }
}
