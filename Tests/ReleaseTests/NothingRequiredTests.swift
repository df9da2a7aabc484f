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
