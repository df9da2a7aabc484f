import Foundation
import Logging
import Merge
import Hummingbird
import Model
import Release
import Sodium
import Store
import WebSupport

/// The commune operator's pages: sync status and roster progress, learners (register, set or reset
/// a PIN), and a JSON Lines import. National IDs appear on these pages only, never in a URL.
extension PortalApp {
    func registerOperatorRoutes(on router: Router<BasicRequestContext>) {
        router.get("/operator") { req, _ in
            try self.asOperator(req) { name, csrf in Self.page(try self.operatorHome(name: name, csrf: csrf, notice: nil)) }
        }
        router.get("/operator/learners/new") { req, _ in
            try self.asOperator(req) { name, csrf in
                Self.page(PortalPages.registerForm(operator: name, csrf: csrf, commune: try self.store.siteCommune(), error: nil, values: [:]))
            }
        }
        router.post("/operator/learners") { req, _ in try await self.registerLearner(req) }
        router.post("/operator/pin") { req, _ in try await self.setPIN(req) }
        router.get("/operator/import") { req, _ in
            try self.asOperator(req) { name, csrf in Self.page(PortalPages.importForm(operator: name, csrf: csrf, report: nil)) }
        }
        router.post("/operator/import") { req, _ in try await self.importUpload(req) }
    }

    func asOperator(_ req: Request, _ body: (String, String) throws -> Response) throws -> Response {
        guard case .operator(let name, let csrf, _) = try user(req) else { return Web.redirect("/operator/sign-in") }
        return try body(name, csrf)
    }

    func operatorHome(name: String, csrf: String, notice: String?) throws -> String {
        let commune = try store.siteCommune()
        let roster = try commune.map { try store.rosterMembers(commune: $0) } ?? []
        return PortalPages.operatorHome(
            operator: name, csrf: csrf, sync: sync(), commune: commune, roster: roster,
            learners: try store.portalLearners(commune: commune), notice: notice)
    }

    /// The PIN rule: 6 to 12 digits (a learner types it on a phone; lockout stops guessing).
    static func isValidPIN(_ pin: String) -> Bool { (6...12).contains(pin.utf8.count) && pin.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }

    func registerLearner(_ req: Request) async throws -> Response {
        guard case .operator(let name, let csrf, _) = try user(req) else { return Web.redirect("/operator/sign-in") }
        guard let form = try await Web.form(req), Web.tokensMatch(form["csrf"], csrf) else { return badForm() }
        let commune = try store.siteCommune()
        func again(_ error: String) -> Response {
            Self.page(.unprocessableContent, PortalPages.registerForm(operator: name, csrf: csrf, commune: commune, error: error, values: form))
        }
        let nid = (form["national_id"] ?? "").trimmingCharacters(in: .whitespaces)
        let fullName = (form["full_name"] ?? "").trimmingCharacters(in: .whitespaces)
        let unit = (form["unit"] ?? "").trimmingCharacters(in: .whitespaces)
        let pin = form["pin"] ?? ""
        guard Identity.isWellFormedNationalID(nid) else { return again("Số định danh cá nhân phải gồm đúng 12 chữ số.") }
        guard let role = Role(rawValue: form["role"] ?? "") else { return again("Hãy chọn vai trò.") }
        guard let home = Int((form["home_commune"] ?? "").trimmingCharacters(in: .whitespaces)) else { return again("Mã xã/phường phải là số (mã chính thức).") }
        guard pin.isEmpty || Self.isValidPIN(pin) else { return again("Mã PIN gồm 6 đến 12 chữ số (hoặc để trống và đặt sau).") }
        let learnerID: String
        do {
            let outcome = try store.record([.registerLearner(nationalID: nid, fullName: fullName, role: role, unit: unit, homeCommune: home)])
            guard case .learner(let id) = outcome.first else { return again("Không ghi nhận được học viên.") }
            learnerID = id
        } catch let e as RecordValidationError {
            // The import's rules and words: the same validator refuses the same values.
            return again("Không ghi nhận được: \(e)")
        }
        logger.info("Portal: operator registered a learner", metadata: ["operator": "\(name)"])
        var notice = "Đã đăng ký học viên \(fullName)."
        if !pin.isEmpty {
            guard let code = try await hashAndSetPIN(learnerID: learnerID, pin: pin) else { return Web.text(.serviceUnavailable, "busy; try again in a moment") }
            notice += " Mã học viên: \(code). Hãy đưa mã này và mã PIN cho học viên."
        }
        return Self.page(try operatorHome(name: name, csrf: csrf, notice: notice))
    }

    func setPIN(_ req: Request) async throws -> Response {
        guard case .operator(let name, let csrf, _) = try user(req) else { return Web.redirect("/operator/sign-in") }
        guard let form = try await Web.form(req), Web.tokensMatch(form["csrf"], csrf) else { return badForm() }
        guard let learnerID = form["learner"], learnerID.utf8.count == 32, let learner = try store.portalLearner(id: learnerID) else {
            return Self.page(.unprocessableContent, try operatorHome(name: name, csrf: csrf, notice: "Không tìm thấy học viên này."))
        }
        let pin = form["pin"] ?? ""
        guard Self.isValidPIN(pin) else {
            return Self.page(.unprocessableContent, try operatorHome(name: name, csrf: csrf, notice: "Mã PIN gồm 6 đến 12 chữ số."))
        }
        guard let code = try await hashAndSetPIN(learnerID: learnerID, pin: pin) else { return Web.text(.serviceUnavailable, "busy; try again in a moment") }
        logger.info("Portal: operator set a learner's PIN", metadata: ["operator": "\(name)"])
        return Self.page(try operatorHome(name: name, csrf: csrf, notice: "Đã đặt mã PIN cho \(learner.fullName). Mã học viên: \(code)."))
    }

    /// Argon2id takes ~64 MiB and ~0.2 s: hashing shares the sign-in gate's slots.
    private func hashAndSetPIN(learnerID: String, pin: String) async throws -> String? {
        guard let hash = await gate.withSlot({ await gate.hash(pin) }), let hash else { return nil }
        return try store.setLearnerPIN(learnerID: learnerID, pinHash: hash)
    }

    func importUpload(_ req: Request) async throws -> Response {
        guard case .operator(let name, let csrf, _) = try user(req) else { return Web.redirect("/operator/sign-in") }
        let limit = configuration.maxUploadBytes
        guard let type = req.headers[.contentType] else { return Web.text(.unsupportedMediaType, "expected multipart/form-data with a file") }
        let body: ByteBuffer
        do { body = try await req.body.collect(upTo: limit + 64 * 1_024) } catch {
            return Self.page(.contentTooLarge, PortalPages.message(title: "Tệp quá lớn", text: "Tệp nhập tối đa \(limit >> 20) MiB; hãy chia nhỏ tệp."))
        }
        guard let parts = Multipart.parse(Data(body.readableBytesView), contentType: type),
              Web.tokensMatch(parts["csrf"].map { String(decoding: $0, as: UTF8.self) }, csrf)
        else { return badForm() }
        guard let file = parts["file"], !file.isEmpty else {
            return Self.page(.unprocessableContent, PortalPages.importForm(operator: name, csrf: csrf, report: .init(recorded: 0, skipped: 0, errors: ["Chưa chọn tệp."])))
        }
        guard file.count <= limit, let text = String(data: file, encoding: .utf8) else {
            return Self.page(.unprocessableContent, PortalPages.importForm(operator: name, csrf: csrf, report: .init(recorded: 0, skipped: 0, errors: ["Tệp phải là văn bản UTF-8 (JSON Lines), tối đa \(limit >> 20) MiB."])))
        }
        let report = try store.runImport(text.hasPrefix("\u{FEFF}") ? String(text.dropFirst()) : text)
        logger.info("Portal: operator imported a file", metadata: ["operator": "\(name)", "recorded": "\(report.recorded)", "refused": "\(report.errors.count)"])
        let shown = PortalPages.ImportReport(recorded: report.recorded, skipped: report.alreadyImported, errors: report.errors.map(\.description))
        return Self.page(report.errors.isEmpty ? .ok : .unprocessableContent, PortalPages.importForm(operator: name, csrf: csrf, report: shown))
    }
}

/// The least of multipart/form-data (RFC 7578) an upload form needs: named fields and one file per
/// name, each part's bytes as sent. Anything malformed is nil.
enum Multipart {
    static func parse(_ body: Data, contentType: String) -> [String: Data]? {
        let params = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard params.first?.lowercased() == "multipart/form-data",
              let b = params.dropFirst().first(where: { $0.lowercased().hasPrefix("boundary=") })?
                .dropFirst("boundary=".count).trimmingCharacters(in: CharacterSet(charactersIn: "\"")),
              !b.isEmpty, b.utf8.count <= 70
        else { return nil }
        let delimiter = Data("--\(b)".utf8)
        var fields = [String: Data]()
        var cursor = body.startIndex
        guard let first = body.range(of: delimiter, in: cursor..<body.endIndex) else { return nil }
        cursor = first.upperBound
        while true {
            // After a delimiter: "--" ends the body, CRLF starts a part.
            if body[cursor...].starts(with: Data("--".utf8)) { break }
            guard body[cursor...].starts(with: Data("\r\n".utf8)) else { return nil }
            let partStart = cursor + 2
            guard let headerEnd = body.range(of: Data("\r\n\r\n".utf8), in: partStart..<body.endIndex),
                  let next = body.range(of: Data("\r\n".utf8) + delimiter, in: headerEnd.upperBound..<body.endIndex)
            else { return nil }
            let headers = String(decoding: body[partStart..<headerEnd.lowerBound], as: UTF8.self)
            if let name = fieldName(headers), fields[name] == nil { fields[name] = Data(body[headerEnd.upperBound..<next.lowerBound]) }
            cursor = next.upperBound
        }
        return fields
    }

    private static func fieldName(_ headers: String) -> String? {
        for line in headers.components(separatedBy: "\r\n") where line.lowercased().hasPrefix("content-disposition:") {
            // The `name` parameter exactly (not the `name` inside `filename`).
            for param in line.split(separator: ";").dropFirst() {
                let p = param.trimmingCharacters(in: .whitespaces)
                guard p.lowercased().hasPrefix("name=") else { continue }
                return p.dropFirst("name=".count).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            }
            return nil
        }
        return nil
    }
}
