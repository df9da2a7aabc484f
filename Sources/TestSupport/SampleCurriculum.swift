import Merge
public import Model

/// A small curriculum on the programme's themes, for tests and benchmarks.
public enum SampleCurriculum {
    /// Two areas, three courses (one targeted at deputies), nine lessons, three quizzes.
    public static func make(version: UInt64 = 1) -> Curriculum {
        func quiz(_ id: String, _ title: String, questions: Int) -> Curriculum.Quiz {
            Curriculum.Quiz(
                id: id, title: title,
                questions: (1...questions).map {
                    .init(id: "\(id)-q\($0)", prompt: "Câu hỏi \($0)", choices: ["A", "B", "C", "D"], answer: $0 % 4, points: 2)
                })
        }
        return Curriculum(
            version: version,
            areas: [
                .init(id: "ky-nang-so", title: "Kỹ năng số thiết yếu"),
                .init(id: "an-toan", title: "An toàn thông tin và dữ liệu cá nhân"),
            ],
            courses: [
                .init(
                    id: "ksn-101", area: "ky-nang-so", title: "Kỹ năng số cơ bản",
                    lessons: [
                        .init(id: "ksn-101-l1", title: "Thiết bị và Internet"),
                        .init(id: "ksn-101-l2", title: "Thư điện tử công vụ"),
                        .init(id: "ksn-101-l3", title: "Đọc thêm", required: false),
                    ],
                    quizzes: [quiz("ksn-101-quiz", "Kiểm tra kỹ năng số", questions: 5)]),
                .init(
                    id: "attt-101", area: "an-toan", title: "Bảo vệ dữ liệu cá nhân",
                    lessons: [
                        .init(id: "attt-101-l1", title: "Mật khẩu và xác thực hai lớp"),
                        .init(id: "attt-101-l2", title: "Nhận diện lừa đảo"),
                        .init(id: "attt-101-l3", title: "Dữ liệu cá nhân"),
                    ],
                    quizzes: [quiz("attt-101-quiz", "Kiểm tra an toàn thông tin", questions: 4)]),
                .init(
                    id: "ai-qh", area: "ky-nang-so", title: "AI trong hoạt động lập pháp",
                    roles: [.nationalAssemblyDeputy, .provincialCouncilDelegate],
                    lessons: [
                        .init(id: "ai-qh-l1", title: "AI tạo sinh là gì"),
                        .init(id: "ai-qh-l2", title: "Thẩm tra dự án luật với AI"),
                        .init(id: "ai-qh-l3", title: "Rủi ro và trách nhiệm"),
                    ],
                    quizzes: [quiz("ai-qh-quiz", "Kiểm tra AI", questions: 3)]),
            ])
    }

    /// A few real commune codes from the bundled list (Hà Nội, and one from another province).
    public static let communes = [70, 73, 4, 8, 25]
}
