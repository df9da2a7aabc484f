import Model
import Release
import TestSupport
import Testing

@Suite("A course that requires nothing cannot be published")
struct NothingRequiredTests {
    @Test("a release with a course with no required lesson and no quiz is inconsistent, named by course")
    func refused() throws {
        var c = SampleCurriculum.make()
        let ok = Manifest(version: 1, created: 1, expires: 2, curriculum: c, files: [])
        try ok.checkConsistency()
        c.courses.append(.init(id: "empty-101", area: "an-toan", title: "Trống", lessons: [.init(id: "empty-l1", title: "x", required: false)]))
        let m = Manifest(version: 1, created: 1, expires: 2, curriculum: c, files: [])
        do {
            try m.checkConsistency()
            Issue.record("a course that requires nothing was accepted")
        } catch {
            #expect(error.description.contains("course empty-101 requires nothing"))
        }
    }
}

@Suite("Curriculum ids are plain: they appear in the portal's addresses")
struct PlainIDTests {
    @Test("an id with a space, a slash, Vietnamese letters or over 64 characters is refused, named")
    func refused() throws {
        for bad in ["ksn 101 l1", "ksn/l1", "bài-1", String(repeating: "a", count: 65), ""] {
            var c = SampleCurriculum.make()
            c.courses[0].lessons[0].id = bad
            do {
                try Manifest(version: 1, created: 1, expires: 2, curriculum: c, files: []).checkConsistency()
                Issue.record("id \(bad.debugDescription) was accepted")
            } catch {
                #expect(error.description.contains("must be 1 to 64 characters"))
            }
        }
        var c = SampleCurriculum.make()
        c.courses[0].quizzes[0].questions[0].id = "câu 1"
        #expect(throws: ReleaseRefusal.self) { try Manifest(version: 1, created: 1, expires: 2, curriculum: c, files: []).checkConsistency() }
        #expect(Manifest.isPlainID("ksn-101.l1_a") && Manifest.isPlainID(String(repeating: "z", count: 64)))
    }
}
