import Foundation
import Merge
import Model
import Store
import TestSupport
import Testing

@Suite("JSON Lines import")
struct EventImportTests {
    @Test("good lines are kept, bad ones reported by number and reason, never echoing personal data")
    func mixed() throws {
        let r = try Replica()
        defer { r.dir.remove() }
        let text = """
            {"type":"learner","national_id":"001200000001","full_name":"Trần Văn B","role":"commune_council_delegate","unit":"HĐND xã","home_commune":70}
            {"type":"enroll","national_id":"001200000001","course":"ksn-101"}
            not json
            {"type":"progress","national_id":"001200000001","lesson":"ksn-101-l1","percent":150,"at":"2026-01-01T00:00:00Z"}

            {"type":"progress","national_id":"001200000001","lesson":"ksn-101-l1","percent":100,"at":"2026-01-01T00:00:00+07:00"}
            {"type":"attempt","national_id":"001200000001","quiz":"ksn-101-quiz","answers":[0,1,2,3,0],"score":9,"max_score":10,"started_at":"2025-12-31T23:50:00Z","finished_at":"2026-01-01T00:00:00Z"}
            {"type":"learner","national_id":"0012","full_name":"X","role":"other","unit":"U","home_commune":70}
            {"type":"learner","national_id":"001200000002","full_name":"Y","role":"mayor","unit":"U","home_commune":70}
            {"type":"progress","national_id":"001200000001","lesson":"ksn-101-l2","percent":10,"at":"yesterday"}
            {"type":"teleport","national_id":"001200000001"}
            {"type":"certify","national_id":"001200000001","course":"ksn-101"}
            """
        let (recorded, errors) = try r.store.importEvents(text, chunk: 3)
        #expect(recorded == 4)
        #expect(errors.map(\.line) == [3, 4, 8, 9, 10, 11, 12])
        #expect(errors[1].reason == "progress must be 0–100 percent, got 150")
        #expect(errors[2].reason.contains("12 digits") && !errors[2].reason.contains("0012"))
        #expect(errors[3].reason.contains("unknown role"))
        #expect(errors[6].reason.contains("not eligible"))
        let id = Identity.learnerID(nationalID: "001200000001")
        let status = try r.store.courseStatus(learnerID: id, courseID: "ksn-101")
        #expect(status.isEnrolled && status.completedRequiredLessons == 1 && status.passedQuizzes == 1)
    }
}
