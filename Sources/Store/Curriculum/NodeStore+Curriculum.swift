public import Foundation
import GRDB
import Merge
public import Model
import Synchronization

/// The installed curriculum: its tables, its release record, and the in-memory index validation reads.
extension NodeStore {
    /// Installs (or upgrades to) a curriculum without a signed release (tests and benchmarks;
    /// nodes in service install through ``installRelease(_:manifest:signatures:)``).
    public func installCurriculum(_ c: Curriculum) throws {
        try installRelease(c, manifest: nil, signatures: nil)
    }

    /// Switches to a release atomically: the curriculum rows, the release record and every
    /// derived fact the new completion rules change commit in one transaction, so learners see
    /// the old release or the new one, never a mix. Items are upserted, never deleted, so
    /// results recorded against an older release keep their lessons and quizzes.
    public func installRelease(_ c: Curriculum, manifest: Data?, signatures: Data?) throws {
        let installed = now()
        let fresh = try pool.write { db -> CurriculumIndex in
            try Self.writeCurriculum(c, db)
            try db.execute(
                sql: "INSERT OR REPLACE INTO curriculum_release (singleton, version, installed_at) VALUES (1, ?, ?)",
                arguments: [Int64(c.version), installed])
            if let manifest {
                try db.execute(
                    sql: """
                        INSERT OR REPLACE INTO release_manifest (version, manifest, signatures, state, received_at)
                        VALUES (?, ?, ?, 'installed', ?)
                        """, arguments: [Int64(c.version), manifest, signatures ?? Data("[]".utf8), installed])
                try db.execute(
                    sql: "DELETE FROM release_manifest WHERE version < ? OR (version > ? AND state = 'installed')",
                    arguments: [Int64(c.version), Int64(c.version)])
            }
            // What "complete" means may have changed (a new required lesson): rare, so rebuild.
            let index = try Self.readCurriculumIndex(db)
            try FactKeeper.rebuildAll(db, curriculum: index)
            return index
        }
        index.withLock { $0 = fresh }
    }

    static func writeCurriculum(_ c: Curriculum, _ db: Database) throws {
        for (i, a) in c.areas.enumerated() {
            try db.execute(
                sql: """
                    INSERT INTO framework_area (area_id, title, position) VALUES (?, ?, ?)
                    ON CONFLICT(area_id) DO UPDATE SET title = excluded.title, position = excluded.position
                    """, arguments: [a.id, a.title, i])
        }
        for (i, course) in c.courses.enumerated() {
            try db.execute(
                sql: """
                    INSERT INTO course (course_id, area_id, title, pass_percent, position) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT(course_id) DO UPDATE SET area_id = excluded.area_id, title = excluded.title,
                      pass_percent = excluded.pass_percent, position = excluded.position
                    """, arguments: [course.id, course.area, course.title, course.passPercent, i])
            try db.execute(sql: "DELETE FROM course_role WHERE course_id = ?", arguments: [course.id])
            try db.execute(sql: "DELETE FROM course_province WHERE course_id = ?", arguments: [course.id])
            for role in course.roles {
                try db.execute(
                    sql: "INSERT INTO course_role (course_id, role) VALUES (?, ?)",
                    arguments: [course.id, role.rawValue])
            }
            for p in course.provinces {
                try db.execute(
                    sql: "INSERT INTO course_province (course_id, province_code) VALUES (?, ?)",
                    arguments: [course.id, p])
            }
            for (j, l) in course.lessons.enumerated() {
                try db.execute(
                    sql: """
                        INSERT INTO lesson (lesson_id, course_id, title, required, position) VALUES (?, ?, ?, ?, ?)
                        ON CONFLICT(lesson_id) DO UPDATE SET course_id = excluded.course_id, title = excluded.title,
                          required = excluded.required, position = excluded.position
                        """, arguments: [l.id, course.id, l.title, l.required, j])
            }
            for (j, q) in course.quizzes.enumerated() {
                try db.execute(
                    sql: """
                        INSERT INTO quiz (quiz_id, course_id, title, position) VALUES (?, ?, ?, ?)
                        ON CONFLICT(quiz_id) DO UPDATE SET course_id = excluded.course_id, title = excluded.title,
                          position = excluded.position
                        """, arguments: [q.id, course.id, q.title, j])
                try db.execute(sql: "DELETE FROM question WHERE quiz_id = ?", arguments: [q.id])
                for (k, question) in q.questions.enumerated() {
                    let choices = String(decoding: try JSONEncoder().encode(question.choices), as: UTF8.self)
                    try db.execute(
                        sql: """
                            INSERT INTO question (question_id, quiz_id, position, prompt, choices, answer, points)
                            VALUES (?, ?, ?, ?, ?, ?, ?)
                            """,
                        arguments: [question.id, q.id, k, question.prompt, choices, question.answer, question.points])
                }
            }
        }
    }

    /// The installed curriculum version, if any.
    public func curriculumVersion() throws -> UInt64? {
        try pool.read { db in try Int64.fetchOne(db, sql: "SELECT version FROM curriculum_release").map(UInt64.init) }
    }

    func reloadCurriculumIndex() throws {
        let fresh = try pool.read { db in try Self.readCurriculumIndex(db) }
        index.withLock { $0 = fresh }
    }

    static func readCurriculumIndex(_ db: Database) throws -> CurriculumIndex {
        var idx = CurriculumIndex()
        idx.courses = Set(try String.fetchAll(db, sql: "SELECT course_id FROM course"))
        for r in try Row.fetchAll(db, sql: "SELECT lesson_id, course_id, required FROM lesson") {
            let lesson: String = r["lesson_id"], course: String = r["course_id"]
            idx.lessons.insert(lesson)
            idx.lessonCourse[lesson] = course
            if r["required"] as Bool { idx.rules[course, default: .init()].requiredLessons.insert(lesson) }
        }
        for r in try Row.fetchAll(db, sql: "SELECT course_id, pass_percent FROM course") {
            idx.rules[r["course_id"], default: .init()].passPercent = r["pass_percent"]
        }
        idx.communes = Set(try Int.fetchAll(db, sql: "SELECT code FROM commune"))
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT q.quiz_id, q.course_id, coalesce(sum(x.points), 0) AS max_score, count(x.question_id) AS n
                FROM quiz q LEFT JOIN question x USING (quiz_id) GROUP BY q.quiz_id
                """)
        for r in rows {
            idx.quizzes[r["quiz_id"]] = .init(courseID: r["course_id"], maxScore: r["max_score"], questions: r["n"])
            idx.rules[r["course_id"], default: .init()].quizzes.append(r["quiz_id"])
        }
        return idx
    }

    var validatorIndex: CurriculumIndex { index.withLock { $0 } }
}
