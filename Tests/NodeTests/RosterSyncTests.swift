import Foundation
import Merge
import Model
import Node
import Store
import TestSupport
import Testing

@Suite("Rosters over real CURVE sockets")
struct RosterSyncTests {
    static func roster(_ rows: [(Int, Int, String)]) -> [RosterImport.Row] {
        let text = "national_id,full_name,role,unit,commune_code,status\n"
            + rows.map { String(format: "0012%08d", $0.0) + ",Cán bộ \($0.0),civil_servant,UBND,\($0.1),\($0.2)" }.joined(separator: "\n")
        return RosterImport.parse(text, format: .csv).rows
    }

    @Test("each site receives its own commune's roster, live and never another's; a move and a removal reach it")
    func eachSiteGetsItsOwnRoster() throws {
        let fleet = try Fleet(communes: [70, 73])
        defer { fleet.shutdown() }
        let hanoi = fleet.sites[0], cuaNam = fleet.sites[1]
        for s in fleet.sites { try fleet.startSite(s) }
        #expect(eventually { fleet.hub.stats.connectedCommunes == [70, 73] })

        // Imported while both sites are connected (as `hocvu hub roster import` on a running hub).
        let first = try fleet.hubStore.importRoster(Self.roster([(1, 70, ""), (2, 70, ""), (3, 70, ""), (4, 73, "")]))
        #expect(first.added == 4)
        #expect(try eventually { try hanoi.store.rosterMembers(commune: 70).count == 3 })
        #expect(try eventually { try cuaNam.store.rosterMembers(commune: 73).count == 1 })
        // Never another commune's: 73 holds no entry about 70's officials, and the reverse.
        #expect(try cuaNam.store.rosterCommunes() == [73: 1])
        #expect(try hanoi.store.rosterCommunes() == [70: 3])
        #expect(try hanoi.store.siteCommune() == 70)

        // Official 3 moves to 73; official 2 is removed: 70 drops both, 73 gains one.
        let edit = try fleet.hubStore.importRoster(Self.roster([(3, 73, ""), (2, 70, "removed")]))
        #expect(edit.changed == 1 && edit.removed == 1)
        #expect(try eventually { try hanoi.store.rosterMembers(commune: 70).map(\.learnerID) == [Identity.learnerID(nationalID: "001200000001")] })
        #expect(try eventually { try cuaNam.store.rosterMembers(commune: 73).count == 2 })
        #expect(try hanoi.store.quarantine().isEmpty && cuaNam.store.quarantine().isEmpty)

        // The hub's figures count the roster; an official registering at their site moves the rate.
        try hanoi.store.record([
            .registerLearner(nationalID: "001200000001", fullName: "Cán bộ 1", role: .civilServant, unit: "UBND", homeCommune: 70),
            .enroll(learnerID: Identity.learnerID(nationalID: "001200000001"), courseID: "ksn-101"),
        ])
        hanoi.client?.wake()
        #expect(try eventually { try fleet.hubStore.nationalReport().commune(70)?.figures.rosterEnrolled == 1 })
        let report = try fleet.hubStore.nationalReport()
        #expect(report.commune(70)?.figures.roster == 1 && report.commune(73)?.figures.roster == 2)
        #expect(report.national.roster == 3 && report.national.offRoster == 0)
    }
}
