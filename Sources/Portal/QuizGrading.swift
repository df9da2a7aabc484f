public import Model

/// Grades a quiz on the server: the answer key never leaves the site. Pure.
public enum QuizGrading {
    public struct Graded: Equatable, Sendable {
        /// Option index per question, -1 for none (what the attempt records).
        public let answers: [Int]
        public let score: Int
        public let maxScore: Int
        /// Per question: answered right.
        public let correct: [Bool]
    }

    public enum Refusal: Error, Equatable, CustomStringConvertible {
        case wrongCount(expected: Int, got: Int)
        case outOfRange(question: Int, choices: Int)

        public var description: String {
            switch self {
            case .wrongCount(let e, let g): "the quiz has \(e) questions but \(g) answers were sent (use -1 for a question left blank)"
            case .outOfRange(let q, let n): "answer to question \(q + 1) must be -1 (blank) or 0…\(n - 1)"
            }
        }
    }

    /// Grades `answers` (one per question, -1 = blank) against `quiz`.
    public static func grade(_ quiz: Curriculum.Quiz, answers: [Int]) throws(Refusal) -> Graded {
        guard answers.count == quiz.questions.count else { throw .wrongCount(expected: quiz.questions.count, got: answers.count) }
        var score = 0
        var correct = [Bool]()
        for (i, q) in quiz.questions.enumerated() {
            let a = answers[i]
            guard a == -1 || (0..<q.choices.count).contains(a) else { throw .outOfRange(question: i, choices: q.choices.count) }
            let right = a == q.answer
            correct.append(right)
            if right { score += q.points }
        }
        return Graded(answers: answers, score: score, maxScore: quiz.maxScore, correct: correct)
    }
}
