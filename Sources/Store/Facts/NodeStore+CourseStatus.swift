import GRDB
public import Model

extension CourseStatus {
    static func fetch(_ db: Database, learnerID: String, courseID: String) throws -> CourseStatus {
        let row = try Row.fetchOne(
            db,
            sql: """
                SELECT
                  coalesce((SELECT length % 2 = 1 FROM enrollment WHERE learner_id = ?1 AND course_id = ?2), 0) AS enrolled,
                  (SELECT count(*) FROM lesson WHERE course_id = ?2 AND required = 1) AS required_lessons,
                  (SELECT count(*) FROM lesson l JOIN progress p ON p.lesson_id = l.lesson_id AND p.learner_id = ?1
                     WHERE l.course_id = ?2 AND l.required = 1 AND p.completed_at IS NOT NULL) AS completed,
                  (SELECT count(*) FROM quiz WHERE course_id = ?2) AS quizzes,
                  (SELECT count(*) FROM quiz q JOIN course c USING (course_id)
                     JOIN quiz_best b ON b.learner_id = ?1 AND b.quiz_id = q.quiz_id
                     WHERE q.course_id = ?2 AND b.best_score * 100 >= c.pass_percent * b.max_score) AS passed
                """, arguments: [learnerID, courseID])!
        return CourseStatus(
            courseID: courseID, isEnrolled: row["enrolled"], requiredLessons: row["required_lessons"],
            completedRequiredLessons: row["completed"], quizzes: row["quizzes"], passedQuizzes: row["passed"])
    }
}

extension NodeStore {
    /// Where `learnerID` stands in `courseID` (derived from lessons, progress and attempts).
    public func courseStatus(learnerID: String, courseID: String) throws -> CourseStatus {
        try pool.read { db in try CourseStatus.fetch(db, learnerID: learnerID, courseID: courseID) }
    }

    /// Best score per quiz for a learner (derived from attempts; conflicting attempts excluded).
    public func bestScores(learnerID: String) throws -> [BestScore] {
        try pool.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT quiz_id, best_score, max_score FROM quiz_best WHERE learner_id = ? ORDER BY quiz_id",
                arguments: [learnerID]
            ).map { BestScore(quizID: $0["quiz_id"], score: $0["best_score"], maxScore: $0["max_score"]) }
        }
    }
}

extension NodeStore {
    /// The courses the derived facts (what the national totals count) hold `learnerID` to have
    /// completed: the same rule as ``courseStatus(learnerID:courseID:)``, kept incrementally.
    public func completedCourses(learnerID: String) throws -> Set<String> {
        try pool.read { db in
            let courses = try String.fetchOne(db, sql: "SELECT courses FROM learner_fact WHERE learner_id = ?", arguments: [learnerID])
            return Set(FactKeeper.Fact.decodeCourses(courses ?? "").filter(\.value.completed).keys)
        }
    }
}
