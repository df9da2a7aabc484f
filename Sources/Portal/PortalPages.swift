import Foundation
import Logging
import Merge
import Model
import Release
import Store
import WebSupport

/// The portal's pages in Vietnamese: plain HTML and inline CSS, usable on a phone and an old office
/// PC; no script, nothing fetched from elsewhere. Personal data (names, national IDs) appears only
/// in page bodies, never in titles or URLs.
enum PortalPages {
    static let style = """
        body{font-family:sans-serif;margin:0;color:#212121;background:#fafafa;font-size:17px;line-height:1.45}
        header{background:#b71c1c;color:#fff;padding:10px 16px;display:flex;flex-wrap:wrap;justify-content:space-between;align-items:center;gap:8px}
        header a{color:#fff}main{padding:12px 16px;max-width:900px}a{color:#0d47a1}
        table{border-collapse:collapse;margin:8px 0 16px;background:#fff;width:100%}
        th,td{border:1px solid #ddd;padding:6px 8px;text-align:left;vertical-align:top}th{background:#f0f0f0}
        .ok{color:#2e7d32;font-weight:bold}.no{color:#c62828;font-weight:bold}.note{color:#616161;font-size:14px}
        form.inline{display:inline}button{cursor:pointer;padding:8px 14px;font-size:16px}
        .box{background:#fff;border:1px solid #ddd;padding:12px 16px;margin:10px 0}
        .signin{max-width:380px;margin:40px auto}.signin input{width:100%;margin:4px 0 12px;padding:8px;box-sizing:border-box;font-size:18px}
        .err{color:#c62828;font-weight:bold}.notice{background:#e8f5e9;border:1px solid #a5d6a7;padding:8px 12px}
        video,img{max-width:100%;height:auto}fieldset{margin:10px 0;border:1px solid #ccc;background:#fff}
        label.choice{display:block;padding:6px 4px}input[type=radio]{transform:scale(1.3);margin-right:8px}
        input,select{font-size:16px;padding:6px}
        """

    static func h(_ s: String) -> String { Format.html(s) }

    static func layout(title: String, who: String?, csrf: String?, nav: String = "", body: String) -> String {
        var right = ""
        if let who, let csrf {
            right = "<span>\(h(who)) · <form class=\"inline\" method=\"post\" action=\"/sign-out\"><input type=\"hidden\" name=\"csrf\" value=\"\(csrf)\"><button type=\"submit\">Đăng xuất</button></form></span>"
        }
        return """
            <!DOCTYPE html>
            <html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(h(title)) · Bình dân học vụ số</title><style>\(style)</style></head>
            <body><header><strong>Bình dân học vụ số</strong>\(nav)\(right)</header><main>
            \(body)
            </main></body></html>
            """
    }

    static func learnerNav() -> String {
        "<nav><a href=\"/learn\">Khóa học</a> · <a href=\"/learn/me\">Kết quả của tôi</a></nav>"
    }

    static func message(title: String, text: String) -> String {
        layout(title: title, who: nil, csrf: nil, body: "<h1>\(h(title))</h1><p>\(h(text))</p><p><a href=\"/\">Về trang chính</a></p>")
    }

    static func signIn(_ kind: PortalAccountKind, csrf: String, error: String?) -> String {
        let learner = kind == .learner
        let err = error.map { "<p class=\"err\" id=\"error\">\(h($0))</p>" } ?? ""
        let action = learner ? "/sign-in" : "/operator/sign-in"
        let other = learner ? "<p class=\"note\">Cán bộ phụ trách: <a href=\"/operator/sign-in\">đăng nhập tại đây</a>.</p>" : "<p class=\"note\"><a href=\"/sign-in\">Học viên đăng nhập</a></p>"
        let body = """
            <div class="signin box"><h1>\(learner ? "Học viên đăng nhập" : "Cán bộ phụ trách đăng nhập")</h1>\(err)
            <form method="post" action="\(action)"><input type="hidden" name="csrf" value="\(csrf)">
            <label>\(learner ? "Mã học viên" : "Tên đăng nhập")<input name="name" id="name" autocomplete="username" \(learner ? "inputmode=\"numeric\"" : "") required></label>
            <label>\(learner ? "Mã PIN" : "Mật khẩu")<input name="secret" id="secret" type="password" autocomplete="current-password" \(learner ? "inputmode=\"numeric\"" : "") required></label>
            <button type="submit" id="submit">Đăng nhập</button></form>
            <p class="note">\(learner ? "Mã học viên và mã PIN do cán bộ phụ trách tại xã/phường cấp." : "Tài khoản do quản trị hệ thống tạo (hocvu site user add).")</p>\(other)</div>
            """
        return layout(title: learner ? "Đăng nhập" : "Đăng nhập cán bộ", who: nil, csrf: nil, body: body)
    }

    // MARK: Learner

    static func courseList(_ learner: PortalLearner, states: [Learning.CourseState], hasRelease: Bool, csrf: String) -> String {
        var body = "<h1>Khóa học của bạn</h1>"
        if !hasRelease {
            body += "<p>Điểm học chưa nhận được bộ học liệu. Vui lòng quay lại sau.</p>"
        } else if states.isEmpty {
            body += "<p>Chưa có khóa học nào dành cho vai trò của bạn trong bộ học liệu hiện tại.</p>"
        }
        for s in states {
            body += """
                <div class="box course" data-course="\(h(s.course))"><h2><a href="/learn/course/\(h(s.course))">\(h(s.title))</a></h2>
                <p>Bài học bắt buộc: \(s.completedRequiredLessons)/\(s.requiredLessons) · Bài kiểm tra đạt: \(s.passedQuizzes)/\(s.quizzes) · \(stateWord(s))</p></div>
                """
        }
        return layout(title: "Khóa học", who: learner.fullName, csrf: csrf, nav: learnerNav(), body: body)
    }

    static func stateWord(_ s: Learning.CourseState) -> String {
        if s.certificateIssuedAt != nil { return "<span class=\"ok\">Đã được cấp chứng nhận</span>" }
        if s.complete { return "<span class=\"ok\">Đã hoàn thành</span>" }
        return s.enrolled ? "Đang học" : "Chưa bắt đầu"
    }

    static func course(_ c: Curriculum.Course, state: Learning.CourseState, progress: LearnerProgress, learner: PortalLearner, csrf: String) -> String {
        var body = "<h1>\(h(c.title))</h1><p>\(stateWord(state))</p><h2>Bài học</h2><table><tr><th>Bài</th><th>Tiến độ</th></tr>"
        for l in c.lessons {
            let p = progress.lessons[l.id] ?? 0
            body += "<tr><td><a href=\"/learn/lesson/\(h(l.id))\">\(h(l.title))</a>\(l.required ? "" : " <span class=\"note\">(không bắt buộc)</span>")</td><td class=\"lesson-progress\" data-lesson=\"\(h(l.id))\" data-value=\"\(p)\">\(p == 100 ? "<span class=\"ok\">Hoàn thành</span>" : p > 0 ? "Đang học" : "Chưa học")</td></tr>"
        }
        body += "</table>"
        if !c.quizzes.isEmpty {
            body += "<h2>Bài kiểm tra</h2><table><tr><th>Bài kiểm tra</th><th>Điểm cao nhất</th></tr>"
            for q in c.quizzes {
                let best = progress.bestScores[q.id].map { "\($0.score)/\($0.maxScore)" } ?? "Chưa làm"
                body += "<tr><td><a href=\"/learn/quiz/\(h(q.id))\">\(h(q.title))</a></td><td>\(best)</td></tr>"
            }
            body += "</table>"
        }
        body += "<p class=\"note\">\(h(ruleInWords(c)))</p>"
        return layout(title: c.title, who: learner.fullName, csrf: csrf, nav: learnerNav(), body: body)
    }

    /// The programme's completion rule (CompletionRule) in words, for one course.
    static func ruleInWords(_ c: Curriculum.Course) -> String {
        let required = c.lessons.filter(\.required).count
        var parts = [String]()
        if required > 0 { parts.append("học xong \(required) bài bắt buộc") }
        if !c.quizzes.isEmpty { parts.append("đạt từ \(c.passPercent)% số điểm trở lên ở \(c.quizzes.count == 1 ? "bài kiểm tra" : "mỗi bài kiểm tra trong \(c.quizzes.count) bài kiểm tra")") }
        return "Hoàn thành khóa học khi " + parts.joined(separator: " và ") + "; khi hoàn thành, bạn được cấp chứng nhận."
    }

    static func lesson(_ l: Curriculum.Lesson, course: Curriculum.Course, texts: [Int: String], percent: Int, learner: PortalLearner, csrf: String) -> String {
        var body = "<p><a href=\"/learn/course/\(h(course.id))\">← \(h(course.title))</a></p><h1>\(h(l.title))</h1>"
        for (i, path) in l.files.enumerated() {
            let src = "/media/\(h(l.id))/\(i)"
            switch MediaResponder.kind(path) {
            case .text: body += "<div class=\"box lesson-text\">\(LessonText.html(texts[i] ?? ""))</div>"
            case .video: body += "<video id=\"video-\(i)\" controls preload=\"metadata\" src=\"\(src)\">Trình duyệt không phát được video này. <a href=\"\(src)\">Tải video</a>.</video>"
            case .audio: body += "<audio id=\"audio-\(i)\" controls preload=\"metadata\" src=\"\(src)\"></audio>"
            case .image: body += "<img src=\"\(src)\" alt=\"\">"
            case .pdf: body += "<p><a href=\"\(src)\">Mở tài liệu PDF</a></p>"
            case .other: body += "<p><a href=\"\(src)\">Tải tệp \(h((path as NSString).lastPathComponent))</a></p>"
            }
        }
        if percent == 100 {
            body += "<p class=\"ok\" id=\"lesson-done\">Bạn đã hoàn thành bài học này.</p>"
        } else {
            body += "<form method=\"post\" action=\"/learn/lesson/\(h(l.id))/done\"><input type=\"hidden\" name=\"csrf\" value=\"\(csrf)\"><button type=\"submit\" id=\"done\">Tôi đã học xong bài này</button></form>"
        }
        return layout(title: l.title, who: learner.fullName, csrf: csrf, nav: learnerNav(), body: body)
    }

    static func quiz(_ q: Curriculum.Quiz, course: Curriculum.Course, best: BestScore?, nonce: String, startedAt: Int64, learner: PortalLearner, csrf: String) -> String {
        var body = "<p><a href=\"/learn/course/\(h(course.id))\">← \(h(course.title))</a></p><h1>\(h(q.title))</h1>"
        body += "<p class=\"note\">Cần đạt từ \(course.passPercent)% số điểm (\(q.maxScore) điểm tối đa).\(best.map { " Điểm cao nhất của bạn: \($0.score)/\($0.maxScore)." } ?? "")</p>"
        body += "<form method=\"post\" action=\"/learn/quiz/\(h(q.id))\" id=\"quiz\"><input type=\"hidden\" name=\"csrf\" value=\"\(csrf)\"><input type=\"hidden\" name=\"nonce\" value=\"\(nonce)\"><input type=\"hidden\" name=\"started\" value=\"\(startedAt)\">"
        for (n, question) in q.questions.enumerated() {
            body += "<fieldset><legend>Câu \(n + 1). \(h(question.prompt)) <span class=\"note\">(\(question.points) điểm)</span></legend>"
            for (i, choice) in question.choices.enumerated() {
                body += "<label class=\"choice\"><input type=\"radio\" name=\"q-\(h(question.id))\" value=\"\(i)\" id=\"q-\(h(question.id))-\(i)\">\(h(choice))</label>"
            }
            body += "</fieldset>"
        }
        body += "<button type=\"submit\" id=\"submit-quiz\">Nộp bài</button></form>"
        return layout(title: q.title, who: learner.fullName, csrf: csrf, nav: learnerNav(), body: body)
    }

    static func quizResult(_ q: Curriculum.Quiz, course: Curriculum.Course, result: Learning.AttemptResult, learner: PortalLearner, csrf: String) -> String {
        var body = "<h1>\(h(q.title))</h1><p class=\"big\">Điểm của bạn: <strong id=\"score\" data-value=\"\(result.score)\" data-max=\"\(result.maxScore)\">\(result.score)/\(result.maxScore)</strong></p>"
        body += result.passed ? "<p class=\"ok\" id=\"passed\">Đạt.</p>" : "<p class=\"no\" id=\"passed\">Chưa đạt (cần từ \(course.passPercent)%). Bạn có thể làm lại.</p>"
        if result.certificateIssued { body += "<p class=\"ok\" id=\"certificate\">Chúc mừng! Bạn đã hoàn thành khóa học và được cấp chứng nhận.</p>" }
        let right = result.correct.filter { $0 }.count
        body += "<p>Số câu đúng: \(right)/\(result.correct.count).</p>"
        body += "<p><a href=\"/learn/course/\(h(course.id))\">← \(h(course.title))</a> · <a href=\"/learn/me\">Kết quả của tôi</a></p>"
        return layout(title: q.title, who: learner.fullName, csrf: csrf, nav: learnerNav(), body: body)
    }

    static func me(_ learner: PortalLearner, states: [Learning.CourseState], progress: LearnerProgress, release: InstalledCurriculum?, csrf: String) -> String {
        var body = "<h1>Kết quả của tôi</h1><table><tr><th>Khóa học</th><th>Bài bắt buộc</th><th>Bài kiểm tra đạt</th><th>Chứng nhận</th></tr>"
        for s in states {
            let cert = s.certificateIssuedAt.map { "<span class=\"ok\">Đã cấp \(Format.time($0))</span>" } ?? (s.complete ? "Đủ điều kiện" : "Chưa")
            body += "<tr class=\"state\" data-course=\"\(h(s.course))\" data-complete=\"\(s.complete)\"><td>\(h(s.title))</td><td>\(s.completedRequiredLessons)/\(s.requiredLessons)</td><td>\(s.passedQuizzes)/\(s.quizzes)</td><td>\(cert)</td></tr>"
        }
        body += "</table><h2>Điểm kiểm tra</h2><table><tr><th>Bài kiểm tra</th><th>Điểm cao nhất</th><th>Số lần làm</th></tr>"
        for b in progress.bestScores.values.sorted(by: { $0.quizID < $1.quizID }) {
            let title = release?.quizzes[b.quizID]?.quiz.title ?? b.quizID
            body += "<tr><td>\(h(title))</td><td class=\"best\" data-quiz=\"\(h(b.quizID))\" data-value=\"\(b.score)\">\(b.score)/\(b.maxScore)</td><td>\(progress.attempts[b.quizID] ?? 0)</td></tr>"
        }
        body += "</table><h2>Quy định hoàn thành</h2><p>Một bài kiểm tra được tính là đạt khi điểm cao nhất của bạn đạt từ tỷ lệ điểm khóa học yêu cầu trở lên. Khóa học hoàn thành khi mọi bài học bắt buộc đã học xong (100%) và mọi bài kiểm tra của khóa đều đạt. Học viên đã ghi danh và hoàn thành khóa học được cấp chứng nhận.</p>"
        for s in states { if let c = release?.course(s.course) { body += "<p class=\"note\">\(h(c.title)): \(h(ruleInWords(c)))</p>" } }
        return layout(title: "Kết quả của tôi", who: learner.fullName, csrf: csrf, nav: learnerNav(), body: body)
    }

    // MARK: Operator

    static func operatorNav() -> String {
        "<nav><a href=\"/operator\">Tổng quan</a> · <a href=\"/operator/learners/new\">Đăng ký học viên</a> · <a href=\"/operator/import\">Nhập tệp</a></nav>"
    }

    static func operatorHome(
        operator name: String, csrf: String, sync: PortalServer.SyncStatus?, commune: Int?, roster: [RosterMember], learners: [PortalLearner], notice: String?
    ) -> String {
        var body = notice.map { "<p class=\"notice\" id=\"notice\">\(h($0))</p>" } ?? ""
        body += "<h1>Điểm học \(commune.map { "xã/phường mã \($0)" } ?? "")</h1><div class=\"box\" id=\"sync\"><h2>Đồng bộ với trung tâm</h2>"
        if let s = sync {
            body += "<p>Kết nối: <span class=\"\(s.connected ? "ok" : "no")\" id=\"connected\">\(s.connected ? "đang kết nối" : "mất kết nối")</span>"
            body += " · Lần cuối nhận tin: \(s.lastHeardFromHub.map(Format.time) ?? "chưa có")"
            body += " · Gói chưa được xác nhận: <span id=\"unacked\">\(s.unacknowledgedBatches.map(String.init) ?? "?")</span>"
            body += " · Bộ học liệu: \(s.installedRelease.map { "phiên bản \($0)" } ?? "chưa có")\(s.fetchingRelease.map { " (đang tải phiên bản \($0))" } ?? "")"
            body += " · Bản ghi bị tạm giữ: \(s.quarantinedRecords.map(String.init) ?? "?")</p>"
            if let p = s.problem { body += "<p class=\"err\">\(h(p))</p>" }
        } else {
            body += "<p class=\"note\">Không có thông tin đồng bộ.</p>"
        }
        body += "</div>"
        if !roster.isEmpty {
            let certified = roster.filter { $0.stage == .certified }.count, enrolled = roster.filter { $0.stage == .enrolled }.count
            body += "<div class=\"box\" id=\"roster\"><h2>Danh sách cần đào tạo</h2><p>\(roster.count) người · đã được cấp chứng nhận <span id=\"roster-certified\">\(certified)</span> · đang học \(enrolled) · chưa bắt đầu <span id=\"roster-not-started\">\(roster.count - certified - enrolled)</span></p></div>"
        }
        body += "<h2>Học viên (\(learners.count))</h2><table id=\"learners\"><tr><th>Họ tên</th><th>Số định danh</th><th>Vai trò</th><th>Mã học viên</th><th>Mã PIN</th></tr>"
        for l in learners {
            body += """
                <tr><td>\(h(l.fullName))</td><td>\(h(l.nationalID))</td><td>\(h(l.role.map { Format.roleLabels[$0.rawValue] ?? $0.rawValue } ?? ""))</td><td class="code">\(h(l.code ?? "—"))</td>
                <td><form class="inline" method="post" action="/operator/pin"><input type="hidden" name="csrf" value="\(csrf)"><input type="hidden" name="learner" value="\(l.learnerID)">
                <input name="pin" type="password" inputmode="numeric" size="8" placeholder="6–12 số" aria-label="Mã PIN mới"> <button type="submit">\(l.hasPIN ? "Đặt lại" : "Đặt")</button></form></td></tr>
                """
        }
        body += "</table>"
        return layout(title: "Cán bộ phụ trách", who: name, csrf: csrf, nav: operatorNav(), body: body)
    }

    static func registerForm(operator name: String, csrf: String, commune: Int?, error: String?, values: [String: String]) -> String {
        func v(_ k: String) -> String { h(values[k] ?? "") }
        let roles = Role.allCases.map { r in
            "<option value=\"\(r.rawValue)\"\(values["role"] == r.rawValue ? " selected" : "")>\(h(Format.roleLabels[r.rawValue] ?? r.rawValue))</option>"
        }.joined()
        let body = """
            <h1>Đăng ký học viên</h1>\(error.map { "<p class=\"err\" id=\"error\">\(h($0))</p>" } ?? "")
            <form method="post" action="/operator/learners" class="box"><input type="hidden" name="csrf" value="\(csrf)">
            <p><label>Số định danh cá nhân (12 số)<br><input name="national_id" id="national_id" inputmode="numeric" maxlength="12" value="\(v("national_id"))" required></label></p>
            <p><label>Họ và tên<br><input name="full_name" id="full_name" value="\(v("full_name"))" required></label></p>
            <p><label>Vai trò<br><select name="role" id="role">\(roles)</select></label></p>
            <p><label>Đơn vị công tác<br><input name="unit" id="unit" value="\(v("unit"))" required></label></p>
            <p><label>Mã xã/phường nơi công tác<br><input name="home_commune" id="home_commune" inputmode="numeric" value="\(values["home_commune"].map(h) ?? commune.map(String.init) ?? "")" required></label></p>
            <p><label>Mã PIN (6–12 số; có thể đặt sau)<br><input name="pin" id="pin" type="password" inputmode="numeric"></label></p>
            <button type="submit" id="register">Đăng ký</button></form>
            """
        return layout(title: "Đăng ký học viên", who: name, csrf: csrf, nav: operatorNav(), body: body)
    }

    struct ImportReport {
        let recorded: Int
        let skipped: Int
        let errors: [String]
    }

    static func importForm(operator name: String, csrf: String, report: ImportReport?) -> String {
        var body = "<h1>Nhập tệp kết quả (JSON Lines)</h1>"
        if let r = report {
            body += "<div class=\"box\" id=\"import-report\"><p>Đã ghi nhận <span id=\"recorded\">\(r.recorded)</span> sự kiện; bỏ qua \(r.skipped) dòng đã nhập trước đó; <span id=\"refused\">\(r.errors.count)</span> dòng bị từ chối.</p>"
            if !r.errors.isEmpty { body += "<ul>" + r.errors.prefix(200).map { "<li>\(h($0))</li>" }.joined() + "</ul>" }
            body += "</div>"
        }
        body += """
            <form method="post" action="/operator/import" enctype="multipart/form-data" class="box"><input type="hidden" name="csrf" value="\(csrf)">
            <p><input type="file" name="file" id="file" accept=".jsonl,.json,.txt"></p><button type="submit" id="upload">Nhập</button></form>
            <p class="note">Định dạng: docs/import-format.md. Nhập lại cùng một tệp không ghi trùng.</p>
            """
        return layout(title: "Nhập tệp", who: name, csrf: csrf, nav: operatorNav(), body: body)
    }
}
