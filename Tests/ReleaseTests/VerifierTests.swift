import Foundation
import Merge
import Release
import Sodium
import TestSupport
import Testing

@Suite struct VerifierTests {
    let dir: TemporaryDirectory
    let fixture: ReleaseFixture
    let now = Int64(Date().timeIntervalSince1970)

    init() throws {
        dir = try TemporaryDirectory(prefix: "hocvu-verify")
        fixture = try ReleaseFixture(root: dir.path, admins: 3, threshold: 2, mediaBytes: 1 << 20)
    }

    func verify(_ r: SignedRelease, current: UInt64 = 0, at: Int64? = nil) throws(ReleaseRefusal) -> Manifest {
        try ReleaseVerifier.verify(r, trust: fixture.trust, current: current, now: at ?? now)
    }

    @Test func twoOfThreeSignaturesAccepted() throws {
        let m = try verify(try fixture.build(version: 3).signed())
        #expect(m.version == 3 && m.curriculum.courses.count == 3)
        #expect(m.files.contains { $0.path == "media/video.bin" && $0.size == 1 << 20 })
    }

    @Test func everyRefusal() throws {
        let good = try fixture.build(version: 5).signed()
        #expect(throws: ReleaseRefusal.noSignatures) { try verify(SignedRelease(manifestBytes: good.manifestBytes, signatures: [])) }
        #expect(throws: ReleaseRefusal.belowThreshold(valid: 1, required: 2)) {
            try verify(SignedRelease(manifestBytes: good.manifestBytes, signatures: [good.signatures[0]]))
        }
        // The same admin twice is still one admin.
        #expect(throws: ReleaseRefusal.belowThreshold(valid: 1, required: 2)) {
            try verify(SignedRelease(manifestBytes: good.manifestBytes, signatures: [good.signatures[0], good.signatures[0]]))
        }
        let stranger = SigningKeyPair.generate()
        #expect(throws: ReleaseRefusal.unknownKey(key: stranger.publicKey.hexString)) {
            try verify(SignedRelease(manifestBytes: good.manifestBytes, signatures: [.sign(good.manifestBytes, with: stranger)]))
        }
        var tampered = good.manifestBytes
        tampered.replaceSubrange(tampered.range(of: Data("Kỹ năng số cơ bản".utf8))!, with: Data("Kỹ năng số nâng cao".utf8))
        #expect(throws: ReleaseRefusal.badSignature(key: good.signatures[0].key)) {
            try verify(SignedRelease(manifestBytes: tampered, signatures: good.signatures))
        }
        #expect(throws: ReleaseRefusal.rollback(offered: 5, current: 5)) { try verify(good, current: 5) }
        #expect(throws: ReleaseRefusal.rollback(offered: 5, current: 9)) { try verify(good, current: 9) }
        let m = try Manifest.decode(good.manifestBytes)
        #expect(throws: ReleaseRefusal.expired(version: 5, at: m.expires)) { try verify(good, at: m.expires) }
        #expect(throws: ReleaseRefusal.self) {
            try verify(SignedRelease(manifestBytes: Data("{not json".utf8), signatures: [.sign(Data("{not json".utf8), with: fixture.admins[0].signing), .sign(Data("{not json".utf8), with: fixture.admins[1].signing)]))
        }
    }

    /// A manifest whose chunk list disagrees with its files is refused even when properly signed.
    @Test func signedButInconsistentManifestsAreRefused() throws {
        let m = try Manifest.decode(try fixture.build(version: 2).signed().manifestBytes)
        func signed(_ edit: (inout Manifest) -> Void) -> SignedRelease {
            var x = m
            edit(&x)
            let bytes = x.encoded()
            return SignedRelease(manifestBytes: bytes, signatures: fixture.admins.prefix(2).map { .sign(bytes, with: $0.signing) })
        }
        let cases: [(String, (inout Manifest) -> Void)] = [
            ("size", { $0.files[0].size += 1 }),
            ("chunk size", { $0.files[0].chunks[0].size = Chunker.maximumSize + 1 }),
            ("hash", { $0.files[0].chunks[0].hash = "zz" }),
            ("duplicate path", { $0.files.append($0.files[0]) }),
            ("path escape", { $0.files[0].path = "../etc/passwd" }),
            ("missing lesson file", { $0.curriculum.courses[0].lessons[0].files = ["nope.md"] }),
            ("version", { $0.curriculum.version = 99 }),
            ("huge version", { $0.version = 1 << 63; $0.curriculum.version = 1 << 63 }),
            ("expiry", { $0.expires = $0.created }),
        ]
        for (name, edit) in cases {
            do {
                _ = try verify(signed(edit))
                Issue.record("\(name): accepted")
            } catch {
                guard case .inconsistent = error else { Issue.record("\(name): \(error)"); continue }
            }
        }
        #expect(throws: Never.self) { try verify(signed { _ in }) }
    }

    @Test func trustFileErrorsNameTheProblem() throws {
        #expect(throws: TrustFileError.self) { try TrustPolicy(threshold: 3, admins: [fixture.admins[0].key]) }
        #expect(throws: TrustFileError.self) { try TrustPolicy(threshold: 1, admins: []) }
        let bad = Data(#"{"threshold":1,"admins":[{"name":"x","signing_key":"12","transport_key":"34"}]}"#.utf8)
        do {
            _ = try TrustPolicy.load(bad, source: "trust.json")
            Issue.record("bad keys accepted")
        } catch {
            #expect(error.description.contains("trust.json") && error.description.contains("signing_key"))
        }
        let round = try TrustPolicy.load(fixture.trust.encoded(), source: "t")
        #expect(round == fixture.trust)
    }

    @Test func targetingByRoleAndProvince() throws {
        var c = SampleCurriculum.make()
        c.courses[1].provinces = [1]
        let deputyHanoi = c.courses(for: .nationalAssemblyDeputy, province: 1).map(\.id)
        let servantElsewhere = c.courses(for: .civilServant, province: 4).map(\.id)
        #expect(deputyHanoi == ["ksn-101", "attt-101", "ai-qh"])
        #expect(servantElsewhere == ["ksn-101"])
    }
}
