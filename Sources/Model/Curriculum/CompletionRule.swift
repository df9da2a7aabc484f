/// The programme's one rule for finishing a course, in one place (docs/crdt-rules.md, "Certified
/// means evidence"). Used by certificates (``CourseStatus``, a local `issueCertificate`), the
/// derived facts and national totals (`FactKeeper` in Store) and so by every report and page; the
/// SQL that counts passed quizzes states ``isPassed(best:maxScore:passPercent:)`` as
/// `best * 100 >= pass_percent * max`, and a property test holds the two together.
///
/// - A quiz is **passed** when the learner's best attempt scored at least the course's pass
///   percent of the quiz's maximum.
/// - A course is **complete** when every required lesson has a completion time (progress reached
///   100) and every quiz of the course is passed. A course that requires nothing (no required
///   lesson, no quiz) cannot be published (`Manifest.checkConsistency`) and is never complete.
/// - A learner is **eligible** for the course certificate when the course is complete and they
///   are enrolled in it.
public enum CompletionRule {
    /// Integer arithmetic only: no rounding can disagree between Swift and SQL.
    public static func isPassed(best: Int, maxScore: Int, passPercent: Int) -> Bool {
        maxScore > 0 && best.multipliedReportingOverflow(by: 100).partialValue
            >= passPercent.multipliedReportingOverflow(by: maxScore).partialValue
    }

    /// Completion from counts (what the SQL of ``CourseStatus`` yields).
    public static func isComplete(requiredLessons: Int, completedRequiredLessons: Int, quizzes: Int, passedQuizzes: Int) -> Bool {
        requiredLessons + quizzes > 0 && completedRequiredLessons == requiredLessons && passedQuizzes == quizzes
    }

    /// Completion from sets (what the facts hold in memory): the same rule.
    public static func isComplete(
        requiredLessons: Set<String>, quizzes: [String], completedLessons: Set<String>, passedQuizzes: Set<String>
    ) -> Bool {
        isComplete(
            requiredLessons: requiredLessons.count,
            completedRequiredLessons: requiredLessons.intersection(completedLessons).count,
            quizzes: quizzes.count, passedQuizzes: quizzes.filter(passedQuizzes.contains).count)
    }

    public static func isEligible(enrolled: Bool, complete: Bool) -> Bool { enrolled && complete }
}
