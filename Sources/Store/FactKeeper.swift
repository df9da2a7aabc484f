import GRDB

/// Keeps the derived per-learner facts and per-commune totals current.
///
/// The merge path marks each learner whose records changed; ``flush(_:)`` then recomputes those
/// learners' facts from their own rows (primary-key range reads), compares with what was stored,
/// and applies the difference to the commune totals — all inside the same transaction. Nothing
/// is rebuilt by scanning every result.
///
/// The rules: a learner counts at their **home commune** (last-writer-wins profile field);
/// *enrolled* = at least one active enrollment; *certified* = at least one unrevoked certificate;
/// a course is *completed* by the rule in ``CourseStatus``.
struct FactKeeper {
    private(set) var dirty: Set<String> = []

    mutating func touch(_ learnerID: String) { dirty.insert(learnerID) }

    struct Fact: Equatable {
        var home: Int?
        var enrolled = false
        var certified = false
        var courses: [String: (enrolled: Bool, completed: Bool)] = [:]

        static func == (a: Fact, b: Fact) -> Bool {
            a.home == b.home && a.enrolled == b.enrolled && a.certified == b.certified
                && a.courses.count == b.courses.count
                && a.courses.allSatisfy { k, v in b.courses[k].map { $0 == v } ?? false }
        }
    }

    mutating func flush(_ db: Database) throws {
        guard !dirty.isEmpty else { return }
        for learner in dirty {
            let old = try Self.stored(db, learner)
            let new = try Self.compute(db, learner)
            guard old != new else { continue }
            try Self.apply(db, learner: learner, old: old, sign: -1)
            try Self.apply(db, learner: learner, old: new, sign: +1)
            try Self.store(db, learner, new)
        }
        dirty.removeAll(keepingCapacity: true)
    }

    /// Recomputes every learner (after a curriculum change moved what "complete" means).
    static func rebuildAll(_ db: Database) throws {
        var keeper = FactKeeper()
        for id in try String.fetchAll(db, sql: "SELECT learner_id FROM learner") { keeper.touch(id) }
        try keeper.flush(db)
    }

    static func stored(_ db: Database, _ learner: String) throws -> Fact? {
        guard let row = try Row.fetchOne(
            db, sql: "SELECT home_commune, enrolled, certified FROM learner_fact WHERE learner_id = ?",
            arguments: [learner])
        else { return nil }
        var f = Fact(home: row["home_commune"], enrolled: row["enrolled"], certified: row["certified"])
        for r in try Row.fetchAll(
            db, sql: "SELECT course_id, enrolled, completed FROM learner_course_fact WHERE learner_id = ?",
            arguments: [learner])
        {
            f.courses[r["course_id"]] = (r["enrolled"], r["completed"])
        }
        return f
    }

    static func compute(_ db: Database, _ learner: String) throws -> Fact {
        var f = Fact()
        f.home = try Int.fetchOne(db, sql: "SELECT home_commune FROM learner WHERE learner_id = ?", arguments: [learner])
        for course in try String.fetchAll(
            db, sql: "SELECT course_id FROM enrollment WHERE learner_id = ? AND length % 2 = 1", arguments: [learner])
        {
            f.courses[course, default: (false, false)].enrolled = true
            f.enrolled = true
        }
        // Courses the learner has any result in, then the completion rule for each.
        let touched = try String.fetchAll(
            db,
            sql: """
                SELECT DISTINCT l.course_id FROM progress p JOIN lesson l USING (lesson_id)
                WHERE p.learner_id = ?1 AND p.completed_at IS NOT NULL
                UNION SELECT DISTINCT q.course_id FROM quiz_best b JOIN quiz q USING (quiz_id) WHERE b.learner_id = ?1
                """, arguments: [learner])
        for course in touched where try CourseStatus.fetch(db, learnerID: learner, courseID: course).isComplete {
            f.courses[course, default: (false, false)].completed = true
        }
        f.certified = try Bool.fetchOne(
            db, sql: "SELECT EXISTS (SELECT 1 FROM certificate WHERE learner_id = ? AND revoked_at IS NULL)",
            arguments: [learner]) ?? false
        return f
    }

    /// Adds (`sign` +1) or removes (-1) one learner's contribution to their commune's totals.
    static func apply(_ db: Database, learner: String, old fact: Fact?, sign: Int) throws {
        guard let fact, let home = fact.home else { return }
        // Ensure the rows, then add: CHECK (>= 0) is evaluated on an upsert's proposed row, so a
        // negative delta cannot ride an INSERT ... ON CONFLICT.
        try db.execute(sql: "INSERT OR IGNORE INTO commune_totals (commune_code) VALUES (?)", arguments: [home])
        try db.execute(
            sql: "UPDATE commune_totals SET learners = learners + ?, enrolled = enrolled + ?, certified = certified + ? WHERE commune_code = ?",
            arguments: [sign, fact.enrolled ? sign : 0, fact.certified ? sign : 0, home])
        for (course, c) in fact.courses where c.enrolled || c.completed {
            try db.execute(
                sql: "INSERT OR IGNORE INTO commune_course_totals (commune_code, course_id) VALUES (?, ?)",
                arguments: [home, course])
            try db.execute(
                sql: """
                    UPDATE commune_course_totals SET enrolled = enrolled + ?, completed = completed + ?
                    WHERE commune_code = ? AND course_id = ?
                    """, arguments: [c.enrolled ? sign : 0, c.completed ? sign : 0, home, course])
        }
    }

    static func store(_ db: Database, _ learner: String, _ f: Fact) throws {
        try db.execute(
            sql: "INSERT OR REPLACE INTO learner_fact (learner_id, home_commune, enrolled, certified) VALUES (?, ?, ?, ?)",
            arguments: [learner, f.home, f.enrolled, f.certified])
        try db.execute(sql: "DELETE FROM learner_course_fact WHERE learner_id = ?", arguments: [learner])
        for (course, c) in f.courses {
            try db.execute(
                sql: "INSERT INTO learner_course_fact (learner_id, course_id, enrolled, completed) VALUES (?, ?, ?, ?)",
                arguments: [learner, course, c.enrolled, c.completed])
        }
    }
}
