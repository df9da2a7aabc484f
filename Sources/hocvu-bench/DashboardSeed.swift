import ArgumentParser
import Foundation
import Merge
import Model
import Sodium
import Store
import TestSupport

/// A national-scale hub database for the dashboard benchmark (BENCHMARKS.md, "Dashboard"): every one
/// of the 3,321 communes with an enrolled site, rosters and learners in proportion, a share of them
/// certified with the evidence the rule needs, and a few days of trend.
extension HocVuBench {
    struct SeedHub: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "seed-hub",
            abstract: "Write a hub database of national size (rosters, learners, certificates, trend) for the dashboard benchmark.")

        @Option(help: "The hub database to create (must not exist).") var db: String
        @Option(help: "Where to write the hub's identity.key (hex, mode 0600) for `hocvu hub run`.") var keys: String
        @Option(help: "Roster members across all communes.") var roster = 1_500_000
        @Option(help: "Registered learners (the first of each commune's roster, then some on no roster).") var learners = 600_000
        @Option(help: "Share of learners certified (with completion evidence).") var certified = 0.35

        func validate() throws {
            guard !FileManager.default.fileExists(atPath: db) else { throw ValidationError("\(db) exists; give a new path") }
            guard roster >= 0, learners >= 0, (0...1).contains(certified) else { throw ValidationError("counts ≥ 0, --certified 0…1") }
        }

        func run() async throws {
            func say(_ s: String) { FileHandle.standardError.write(Data(("seed: " + s + "\n").utf8)) }
            let identity = SigningKeyPair.generate()
            try FileManager.default.createDirectory(atPath: keys, withIntermediateDirectories: true)
            for (name, secret) in [("identity.key", identity.secretKey), ("transport.key", BoxKeyPair.generate().secretKey)] {
                let path = "\(keys)/\(name)"
                FileManager.default.createFile(atPath: path, contents: Data((secret.hexString + "\n").utf8), attributes: [.posixPermissions: 0o600])
            }
            let store = try NodeStore(path: db, identity: identity)
            try store.installCurriculum(SampleCurriculum.make())
            let communes = try AdminUnits.bundled().provinces.flatMap { $0.communes.map(\.code) }.sorted()
            let start = Date()
            for (i, c) in communes.enumerated() {
                var key = Data(count: 32)
                key[0] = UInt8(i & 0xFF); key[1] = UInt8(i >> 8); key[31] = 1
                var transport = key
                transport[31] = 2
                try store.enroll(communeCode: c, identityKey: key, transportKey: transport)
            }
            try store.markHeard(Set(communes.prefix(communes.count * 9 / 10)))  // a tenth never heard: stale
            say("enrolled \(communes.count) sites in \(Int(Date().timeIntervalSince(start))) s")

            let perCommune = max(1, roster / communes.count)
            var rows = [RosterImport.Row]()
            var n = 0
            let roles: [Role] = [.civilServant, .civilServant, .civilServant, .communeCouncilDelegate, .communeCouncilDelegate, .provincialCouncilDelegate, .nationalAssemblyDeputy]
            func nid(_ k: Int) -> String { String(format: "%012d", 100_000_000_000 + k) }
            for c in communes {
                for j in 0..<perCommune where n < roster {
                    rows.append(.init(
                        line: n + 2, nationalID: nid(n),
                        entry: RosterEntry(fullName: "Cán bộ \(j)", role: roles[j % roles.count], unit: "UBND", commune: c)))
                    n += 1
                }
                if rows.count >= 50_000 {
                    _ = try store.importRoster(rows, chunk: 25_000)
                    rows.removeAll(keepingCapacity: true)
                    say("roster \(n) in \(Int(Date().timeIntervalSince(start))) s")
                }
            }
            _ = try store.importRoster(rows, chunk: 25_000)
            say("roster \(n) done in \(Int(Date().timeIntervalSince(start))) s")

            // Learners: the roster's people in roster order (so every commune has some), then people
            // on no roster.
            var rng = SeededGenerator(seed: 2026)
            let t = store.systemTime()
            var events = [LocalEvent]()
            for k in 0..<learners {
                let national = nid(k < n ? (k % communes.count) * perCommune + k / communes.count : n + k)
                let commune = communes[k % communes.count]
                events.append(.registerLearner(nationalID: national, fullName: "Học viên \(k)", role: roles[k % roles.count], unit: "UBND", homeCommune: commune))
                let id = Identity.learnerID(nationalID: national)
                events.append(.enroll(learnerID: id, courseID: "ksn-101"))
                if Double.random(in: 0..<1, using: &rng) < certified {
                    events += [
                        .progress(learnerID: id, lessonID: "ksn-101-l1", percent: 100, at: t),
                        .progress(learnerID: id, lessonID: "ksn-101-l2", percent: 100, at: t),
                        .attempt(learnerID: id, quizID: "ksn-101-quiz", answers: [0, 1, 2, 3, 0], score: 9, maxScore: 10, startedAt: t - 600_000, finishedAt: t),
                        .issueCertificate(learnerID: id, courseID: "ksn-101"),
                    ]
                }
                if events.count >= 30_000 {
                    try store.record(events)
                    events.removeAll(keepingCapacity: true)
                    if k % 50_000 < 6_000 { say("learners \(k + 1) in \(Int(Date().timeIntervalSince(start))) s") }
                }
            }
            try store.record(events)
            try store.snapshotDailyTotals()
            let report = try store.nationalReport()
            say("done in \(Int(Date().timeIntervalSince(start))) s")
            print("hub database \(db): \(communes.count) sites, roster \(report.national.roster), learners \(report.national.learners), "
                + "certified roster members \(report.national.rosterCertified) (\(String(format: "%.1f", report.national.certifiedShare * 100)) %)")
        }
    }
}
