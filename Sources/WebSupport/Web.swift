public import Foundation
public import Hummingbird
import Sodium
public import Logging
import Synchronization

/// Requests and responses as the hub's dashboard and a site's portal both handle them: cookies,
/// small forms, strict headers. Every value from a request is checked before use.
public enum Web {
    /// The Content-Security-Policy of pages that show no media: nothing from elsewhere, no script.
    public static let strictPolicy =
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    /// A cookie's value from the request, or nil.
    public static func cookie(_ req: Request, _ name: String) -> String? {
        // By bytes: Foundation's trimming showed in the portal's profile at 50 requests at once.
        for header in req.headers[values: .cookie] {
            for part in header.utf8.split(separator: UInt8(ascii: ";")) {
                let kv = part.drop { $0 == UInt8(ascii: " ") }
                guard let eq = kv.firstIndex(of: UInt8(ascii: "=")), kv[..<eq].elementsEqual(name.utf8) else { continue }
                return String(decoding: kv[kv.index(after: eq)...].reversed().drop { $0 == UInt8(ascii: " ") }.reversed(), as: UTF8.self)
            }
        }
        return nil
    }

    /// `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/, Secure when served over HTTPS.
    public static func setCookie(_ name: String, _ value: String, maxAge: Int?, secure: Bool) -> String {
        var c = "\(name)=\(value); Path=/; HttpOnly; SameSite=Strict"
        if let maxAge { c += "; Max-Age=\(maxAge)" }
        if secure { c += "; Secure" }
        return c
    }

    /// An `application/x-www-form-urlencoded` body of at most `maxBytes`; nil otherwise. The first
    /// value of a repeated key counts.
    public static func form(_ req: Request, maxBytes: Int = 8 * 1_024) async throws -> [String: String]? {
        guard let type = req.headers[.contentType], type.lowercased().hasPrefix("application/x-www-form-urlencoded") else { return nil }
        let body: ByteBuffer
        do { body = try await req.body.collect(upTo: maxBytes) } catch { return nil }
        return formFields(String(buffer: body))
    }

    public static func formFields(_ text: String) -> [String: String] {
        var out = [String: String]()
        for pair in text.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = decode(kv[0]), out[key] == nil else { continue }
            out[key] = kv.count == 2 ? decode(kv[1]) ?? "" : ""
        }
        return out
    }

    static func decode(_ s: Substring) -> String? { s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding }

    /// Headers on every response: nothing cached (pages may hold personal data; figures are live),
    /// no framing, nothing loaded from elsewhere, no referrer.
    public static func headers(_ type: String, policy: String = strictPolicy) -> HTTPFields {
        var h = HTTPFields()
        h[.contentType] = type
        h[.cacheControl] = "no-store"
        h[.contentSecurityPolicy] = policy
        h[.xContentTypeOptions] = "nosniff"
        h[.init("X-Frame-Options")!] = "DENY"
        h[.init("Referrer-Policy")!] = "no-referrer"
        return h
    }

    public static func html(_ status: HTTPResponse.Status, _ body: String, policy: String = strictPolicy) -> Response {
        Response(status: status, headers: headers("text/html; charset=utf-8", policy: policy), body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    public static func text(_ status: HTTPResponse.Status, _ body: String) -> Response {
        Response(status: status, headers: headers("text/plain; charset=utf-8"), body: .init(byteBuffer: ByteBuffer(string: body + "\n")))
    }

    public static func download(_ body: String, type: String, name: String) -> Response {
        var h = headers(type)
        h[.contentDisposition] = "attachment; filename=\"\(name)\""
        return Response(status: .ok, headers: h, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    public static func redirect(_ to: String) -> Response {
        var h = headers("text/plain; charset=utf-8")
        h[.location] = to
        return Response(status: .seeOther, headers: h)
    }

    public static func notFound() -> Response { text(.notFound, "not found") }

    /// An HTTP/1.1 application on `host:port` serving `router`; logs "`name` listening" with its URL
    /// and calls `onRunning` once it listens (the daemon's READY=1 waits for that).
    public static func application(
        name: String, router: Router<BasicRequestContext>, host: String, port: Int, logger: Logger,
        onRunning: @escaping @Sendable () async -> Void
    ) -> some ApplicationProtocol {
        let address = "http://\(host):\(port)/"
        return Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { _ in
                logger.info("\(name) listening", metadata: ["url": "\(address)"])
                await onRunning()
            },
            logger: logger)
    }

    /// True when `sent` is token-shaped and equals `expected` (compared in constant time).
    public static func tokensMatch(_ sent: String?, _ expected: String?) -> Bool {
        guard let sent, let expected, SessionStore.isTokenShaped(sent) else { return false }
        return Sodium.constantTimeEquals(Data(sent.utf8), Data(expected.utf8))
    }
}

/// Argon2id checks in flight are capped: each takes ~64 MiB for ~0.2 s, so a flood of sign-ins is
/// answered 503 beyond the cap instead of exhausting memory. Each check runs on a thread of its
/// own, never on Swift's cooperative threads (one per core): a flood of sign-ins must not stall
/// every other request. Unknown names and locked accounts are checked against a decoy, so they cost
/// the same time as a wrong secret.
public final class SignInGate: Sendable {
    private let verifying = Atomic<Int>(0)
    public let maxConcurrent: Int
    public let decoyHash: String

    public init(maxConcurrent: Int = 4) {
        self.maxConcurrent = maxConcurrent
        decoyHash = PasswordHash.hash(SessionStore.token()) ?? ""
    }

    /// Runs `body` if a slot is free; nil (answer 503) otherwise.
    public func withSlot<T>(_ body: () async throws -> T) async rethrows -> T? {
        guard verifying.add(1, ordering: .relaxed).newValue <= maxConcurrent else {
            verifying.subtract(1, ordering: .relaxed)
            return nil
        }
        defer { verifying.subtract(1, ordering: .relaxed) }
        return try await body()
    }

    public func verify(_ secret: String, against hash: String) async -> Bool {
        await Self.onOwnThread { PasswordHash.verify(secret, against: hash) }
    }

    /// Spends the time of a check and fails.
    public func decoy(_ secret: String) async { _ = await verify(secret, against: decoyHash) }

    public func hash(_ secret: String) async -> String? { await Self.onOwnThread { PasswordHash.hash(secret) } }

    private static func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: work()) }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }
}
