import Foundation
import Merge
import Model
import Store
import TestSupport
import Testing

@Suite("One completion rule: the pure rule, the SQL behind certificates and the derived facts agree")
struct CompletionRuleAgreementTests {
    /// The sample curriculum plus a lessons-only course (pass 100 %) and a quiz-only one (pass 50 %),
    /// so both halves of the rule and odd pass percentages are exercised.
    static func curriculum() -> Curriculum {
        var c = SampleCurriculum.make()
        c.courses.append(.init(
            id: "doc-101", area: "ky-nang-so", title: "Chỉ bài học", passPercent: 100,
            lessons: [.init(id: "doc-101-l1", title: "Một"), .init(id: "doc-101-l2", title: "Hai"),
                      .init(id: "doc-101-l3", title: "Tùy chọn", required: false)]))
        c.courses.append(.init(
            id: "quiz-101", area: "an-toan", title: "Chỉ kiểm tra", passPercent: 50,
            lessons: [.init(id: "quiz-101-l1", title: "Đọc thêm", required: false)],
            quizzes: [.init(id: "quiz-101-q", title: "Kiểm tra", questions: (1...3).map {
                .init(id: "quiz-101-q\($0)", prompt: "?", choices: ["A", "B"], answer: 0, points: $0)
            })]))
        return c
    }

    @Test("on random histories, for every learner and course", arguments: [1, 2, 3, 4, 5] as [UInt64])
    func agree(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        let curriculum = Self.curriculum()
        let r = try Replica(curriculum: curriculum)
        defer { r.dir.remove() }
        let s = r.store
        let learners = try (1...12).map { try s.register($0 + Int(seed) * 100) }
        // What the test itself saw: completed lessons and best score per quiz, per learner.
        var done = [String: Set<String>]()
        var best = [String: [String: Int]]()
        for _ in 0..<300 {
            let learner = learners.randomElement(using: &rng)!
            let course = curriculum.courses.randomElement(using: &rng)!
            r.clock.advance(1_000)
            let t = r.clock.now
            if course.quizzes.isEmpty || Bool.random(using: &rng) {
                let lesson = course.lessons.randomElement(using: &rng)!.id
                let percent = [0, 99, 100, 100].randomElement(using: &rng)!
                try s.record([.progress(learnerID: learner, lessonID: lesson, percent: percent, at: t)])
                if percent == 100 { done[learner, default: []].insert(lesson) }
            } else {
                let quiz = course.quizzes.randomElement(using: &rng)!
                // At the pass mark most of the time: where a rule written twice would disagree.
                let mark = (course.passPercent * quiz.maxScore + 99) / 100
                let score = [max(0, mark - 1), mark, mark, Int.random(in: 0...quiz.maxScore, using: &rng)].randomElement(using: &rng)!
                try s.record([.attempt(
                    learnerID: learner, quizID: quiz.id, answers: Array(repeating: 0, count: quiz.questions.count), score: score,
                    maxScore: quiz.maxScore, startedAt: t - 500, finishedAt: t)])
                best[learner, default: [:]][quiz.id] = max(best[learner]?[quiz.id] ?? -1, score)
            }
        }
        var completions = 0
        for learner in learners {
            let facts = try s.completedCourses(learnerID: learner)
            for course in curriculum.courses {
                let passed = Set(course.quizzes.filter { q in
                    best[learner]?[q.id].map { CompletionRule.isPassed(best: $0, maxScore: q.maxScore, passPercent: course.passPercent) } ?? false
                }.map(\.id))
                let pure = CompletionRule.isComplete(
                    requiredLessons: Set(course.lessons.filter(\.required).map(\.id)), quizzes: course.quizzes.map(\.id),
                    completedLessons: done[learner] ?? [], passedQuizzes: passed)
                let sql = try s.courseStatus(learnerID: learner, courseID: course.id).isComplete
                #expect(sql == pure, "SQL vs rule: \(course.id), seed \(seed)")
                #expect(facts.contains(course.id) == pure, "facts vs rule: \(course.id), seed \(seed)")
                if pure { completions += 1 }
            }
        }
        // The histories must reach both outcomes, or agreement would prove little.
        #expect(completions > 0 && completions < learners.count * curriculum.courses.count)
    }

    @Test("pass is integer arithmetic at the boundary; nothing required is never complete")
    func boundaries() throws {
        #expect(CompletionRule.isPassed(best: 8, maxScore: 10, passPercent: 80))
        #expect(!CompletionRule.isPassed(best: 7, maxScore: 10, passPercent: 80))
        #expect(CompletionRule.isPassed(best: 4, maxScore: 6, passPercent: 66) && !CompletionRule.isPassed(best: 4, maxScore: 6, passPercent: 67))
        #expect(!CompletionRule.isComplete(requiredLessons: 0, completedRequiredLessons: 0, quizzes: 0, passedQuizzes: 0))
    }
}
