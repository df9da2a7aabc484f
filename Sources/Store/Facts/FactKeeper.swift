import GRDB
import Merge
import Model

/// Keeps the derived per-learner facts and per-commune totals current.
///
/// The merge path marks each learner whose records changed; ``flush(_:)`` then recomputes those
/// learners' facts from their own rows (a few primary-key range reads, with the curriculum's
/// shape taken from memory), compares with what was stored, and applies the difference to the
/// commune totals — all inside the same transaction. Nothing is rebuilt by scanning every result.
/// It reads through ``FastStatement`` like the merge path: per-query GRDB overhead was most of
/// its cost (BENCHMARKS.md).
///
/// The rules: a learner counts at their **home commune** (last-writer-wins profile field);
/// *enrolled* = at least one active enrollment; *certified* = at least one unrevoked certificate
/// **for a course the learner completed** by ``CompletionRule`` (evidence the hub holds);
/// an unrevoked certificate without that evidence makes the learner *unbacked*: flagged in the
/// totals, never counted as certified (a site's claim is not evidence).
struct FactKeeper {
    private(set) var dirty: Set<String> = []
    let curriculum: CurriculumIndex

    init(curriculum: CurriculumIndex) { self.curriculum = curriculum }

    mutating func touch(_ learnerID: String) { dirty.insert(learnerID) }

    mutating func touch(_ learners: Set<String>) { dirty.formUnion(learners) }

    /// Marks the learner of a merged record whose stored row changed
    /// (``MergeWriter/Outcome/merged``), unless the record cannot move a fact. A fact reads: the
    /// learner's home and role, their active roster entry, active enrollments, the lessons with a
    /// completion time, the quizzes whose best attempt passes by ``CompletionRule``, and unrevoked
    /// certificates. So:
    /// - a progress moves a fact only with a completion time (a percent below 100 cannot);
    /// - an attempt only as a new best that passes its course's rule: the best only rises, so a new
    ///   best below the pass mark had a best below it before, and the quiz was not passed either way;
    /// - every other kind always may.
    mutating func touch(_ record: RecordChange) {
        switch record {
        case .progress(let p):
            guard p.completedAt != nil else { return }
        case .attempt(let a):
            guard let course = curriculum.quizzes[a.quizID]?.courseID, let rule = curriculum.rules[course],
                  CompletionRule.isPassed(best: a.score, maxScore: a.maxScore, passPercent: rule.passPercent)
            else { return }
        case .learner, .enrollment, .certificate, .roster:
            break
        }
        dirty.insert(record.learnerID)
    }

    struct Fact: Equatable {
        var home: Int?
        /// The learner's own role (raw value), as registered; nil for none.
        var role: String?
        /// Where the person stands on a roster (active entries only): commune and role.
        var roster: RosterSpot?
        var certified = false
        var unbacked = false
        /// Course → flags; only courses with either flag.
        var courses: [String: Flags] = [:]
        var enrolled: Bool { courses.values.contains { $0.enrolled } }

        struct RosterSpot: Equatable {
            var commune: Int
            var role: String
        }

        struct Flags: Equatable {
            var enrolled = false
            var completed = false
        }

        /// Stored compactly in one row: "course:EC;course:E-;…" sorted.
        var encodedCourses: String {
            courses.keys.sorted().map { k in
                let f = courses[k]!
                return "\(k):\(f.enrolled ? "E" : "-")\(f.completed ? "C" : "-")"
            }.joined(separator: ";")
        }

        static func decodeCourses(_ s: String) -> [String: Flags] {
            var out = [String: Flags]()
            for part in s.split(separator: ";") {
                guard let colon = part.lastIndex(of: ":") else { continue }
                let flags = part[part.index(after: colon)...]
                out[String(part[..<colon])] = Flags(enrolled: flags.first == "E", completed: flags.last == "C")
            }
            return out
        }
    }

    /// Statements from the connection's cache (compiled once, reused by every flush).
    private final class Statements {
        let stored, home, roster, enrollments, progress, best, certificates, saveFact, ensureTotals, addTotals, ensureCourse,
            addCourse, ensureRole, addRole: FastStatement
        init(_ db: Database) throws {
            stored = try FastStatement.cached(
                db,
                sql: """
                    SELECT home_commune, certified, courses, unbacked, role, roster_commune, roster_role
                    FROM learner_fact WHERE learner_id = ?
                    """)
            home = try FastStatement.cached(db, sql: "SELECT home_commune, role FROM learner WHERE learner_id = ?")
            roster = try FastStatement.cached(db, sql: "SELECT commune_code, role FROM roster WHERE learner_id = ? AND active = 1")
            enrollments = try FastStatement.cached(db, sql: "SELECT course_id FROM enrollment WHERE learner_id = ? AND length % 2 = 1")
            progress = try FastStatement.cached(db, sql: "SELECT lesson_id FROM progress WHERE learner_id = ? AND completed_at IS NOT NULL")
            best = try FastStatement.cached(db, sql: "SELECT quiz_id, best_score, max_score FROM quiz_best WHERE learner_id = ?")
            certificates = try FastStatement.cached(
                db, sql: "SELECT course_id FROM certificate WHERE learner_id = ? AND revoked_at IS NULL")
            saveFact = try FastStatement.cached(
                db,
                sql: """
                    INSERT OR REPLACE INTO learner_fact
                      (learner_id, home_commune, certified, courses, unbacked, role, roster_commune, roster_role)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """)
            // Ensure the rows, then add: CHECK (>= 0) is evaluated on an upsert's proposed row, so a
            // negative delta cannot ride an INSERT ... ON CONFLICT.
            ensureTotals = try FastStatement.cached(db, sql: "INSERT OR IGNORE INTO commune_totals (commune_code) VALUES (?)")
            addTotals = try FastStatement.cached(
                db,
                sql: """
                    UPDATE commune_totals SET learners = learners + ?, enrolled = enrolled + ?, certified = certified + ?,
                      unbacked_certificates = unbacked_certificates + ? WHERE commune_code = ?
                    """)
            ensureCourse = try FastStatement.cached(
                db, sql: "INSERT OR IGNORE INTO commune_course_totals (commune_code, course_id) VALUES (?, ?)")
            addCourse = try FastStatement.cached(
                db,
                sql: "UPDATE commune_course_totals SET enrolled = enrolled + ?, completed = completed + ? WHERE commune_code = ? AND course_id = ?")
            ensureRole = try FastStatement.cached(db, sql: "INSERT OR IGNORE INTO commune_role_totals (commune_code, role) VALUES (?, ?)")
            addRole = try FastStatement.cached(
                db,
                sql: """
                    UPDATE commune_role_totals SET roster = roster + ?, roster_enrolled = roster_enrolled + ?,
                      roster_certified = roster_certified + ?, learners = learners + ?, enrolled = enrolled + ?,
                      certified = certified + ?, off_roster = off_roster + ?, off_roster_certified = off_roster_certified + ?
                    WHERE commune_code = ? AND role = ?
                    """)
        }
    }

    mutating func flush(_ db: Database) throws {
        guard !dirty.isEmpty else { return }
        let s = try Statements(db)
        for learner in dirty {
            let old = try stored(s, learner)
            let new = try compute(s, learner)
            guard old != new else { continue }
            try add(s, old, sign: -1)
            try add(s, new, sign: +1)
            s.saveFact.bind(1, learner)
            s.saveFact.bind(2, new.home.map(Int64.init))
            s.saveFact.bind(3, new.certified ? 1 : 0)
            s.saveFact.bind(4, new.encodedCourses)
            s.saveFact.bind(5, new.unbacked ? 1 : 0)
            s.saveFact.bind(6, new.role)
            s.saveFact.bind(7, new.roster.map { Int64($0.commune) })
            s.saveFact.bind(8, new.roster?.role)
            try s.saveFact.execute()
        }
        dirty.removeAll(keepingCapacity: true)
    }

    /// Recomputes every learner and roster member (after a curriculum change moved what
    /// "complete" means, or a migration added a fact).
    static func rebuildAll(_ db: Database, curriculum: CurriculumIndex) throws {
        var keeper = FactKeeper(curriculum: curriculum)
        for id in try String.fetchAll(db, sql: "SELECT learner_id FROM learner UNION SELECT learner_id FROM roster") {
            keeper.touch(id)
        }
        try keeper.flush(db)
    }

    private func stored(_ s: Statements, _ learner: String) throws -> Fact? {
        var fact: Fact?
        s.stored.bind(1, learner)
        try s.stored.forEachRow { c in
            fact = Fact(
                home: c.isNull(0) ? nil : c.int(0), role: c.isNull(4) ? nil : c.text(4),
                roster: c.isNull(5) ? nil : .init(commune: c.int(5), role: c.text(6)),
                certified: c.int(1) == 1, unbacked: c.int(3) == 1, courses: Fact.decodeCourses(c.text(2)))
        }
        return fact
    }

    private func compute(_ s: Statements, _ learner: String) throws -> Fact {
        var f = Fact()
        s.home.bind(1, learner)
        try s.home.forEachRow { c in
            f.home = c.isNull(0) ? nil : c.int(0)
            f.role = c.isNull(1) ? nil : c.text(1)
        }
        s.roster.bind(1, learner)
        try s.roster.forEachRow { c in f.roster = .init(commune: c.int(0), role: c.text(1)) }
        s.enrollments.bind(1, learner)
        try s.enrollments.forEachRow { c in f.courses[c.text(0), default: .init()].enrolled = true }
        var done = Set<String>()
        s.progress.bind(1, learner)
        try s.progress.forEachRow { c in done.insert(c.text(0)) }
        var passed = Set<String>()
        s.best.bind(1, learner)
        try s.best.forEachRow { c in
            let quiz = c.text(0)
            guard let course = curriculum.quizzes[quiz]?.courseID, let rule = curriculum.rules[course] else { return }
            if CompletionRule.isPassed(best: c.int(1), maxScore: c.int(2), passPercent: rule.passPercent) { passed.insert(quiz) }
        }
        var candidates = Set(done.compactMap { curriculum.lessonCourse[$0] })
        for q in passed { if let c = curriculum.quizzes[q]?.courseID { candidates.insert(c) } }
        for course in candidates {
            guard let rule = curriculum.rules[course] else { continue }
            if CompletionRule.isComplete(
                requiredLessons: rule.requiredLessons, quizzes: rule.quizzes, completedLessons: done, passedQuizzes: passed)
            {
                f.courses[course, default: .init()].completed = true
            }
        }
        s.certificates.bind(1, learner)
        try s.certificates.forEachRow { c in
            if f.courses[c.text(0)]?.completed == true { f.certified = true } else { f.unbacked = true }
        }
        return f
    }

    /// Adds (`sign` +1) or removes (-1) one learner's contribution to their commune's totals.
    private func add(_ s: Statements, _ fact: Fact?, sign: Int) throws {
        guard let fact else { return }
        if let spot = fact.roster {
            try addRole(s, commune: spot.commune, role: spot.role, [
                sign, fact.enrolled ? sign : 0, fact.certified ? sign : 0, 0, 0, 0, 0, 0,
            ])
        }
        guard let home = fact.home else { return }
        let offRoster = fact.roster == nil ? sign : 0
        try addRole(s, commune: home, role: fact.role ?? Role.other.rawValue, [
            0, 0, 0, sign, fact.enrolled ? sign : 0, fact.certified ? sign : 0, offRoster, fact.certified ? offRoster : 0,
        ])
        s.ensureTotals.bind(1, home)
        try s.ensureTotals.execute()
        s.addTotals.bind(1, sign)
        s.addTotals.bind(2, fact.enrolled ? sign : 0)
        s.addTotals.bind(3, fact.certified ? sign : 0)
        s.addTotals.bind(4, fact.unbacked ? sign : 0)
        s.addTotals.bind(5, home)
        try s.addTotals.execute()
        for (course, c) in fact.courses {
            s.ensureCourse.bind(1, home)
            s.ensureCourse.bind(2, course)
            try s.ensureCourse.execute()
            s.addCourse.bind(1, c.enrolled ? sign : 0)
            s.addCourse.bind(2, c.completed ? sign : 0)
            s.addCourse.bind(3, home)
            s.addCourse.bind(4, course)
            try s.addCourse.execute()
        }
    }

    /// Adds deltas to one (commune, role) row: roster, roster enrolled, roster certified, learners,
    /// enrolled, certified, off roster, off roster certified.
    private func addRole(_ s: Statements, commune: Int, role: String, _ deltas: [Int]) throws {
        s.ensureRole.bind(1, commune)
        s.ensureRole.bind(2, role)
        try s.ensureRole.execute()
        for (i, d) in deltas.enumerated() { s.addRole.bind(Int32(i + 1), d) }
        s.addRole.bind(9, commune)
        s.addRole.bind(10, role)
        try s.addRole.execute()
    }
}
