import Foundation
import Merge
import Sodium
import Testing
import Transport

/// A CURVE ROUTER behind a ZAP handler that admits only `allowed` keys, on tcp loopback.
final class TestServer {
    let context: ZMQContext
    let zap: ZAPHandler
    let router: ZMQSocket
    let keys = BoxKeyPair.generate()
    let endpoint: String
    var allowed: Set<Data>
    var decisions: [ZAPHandler.Decision] = []

    init(allowed: Set<Data>, maxFrame: Int64 = 1 << 20) throws {
        context = try ZMQContext()
        zap = try ZAPHandler(context, domain: "hocvu")  // bound first
        router = try ZMQSocket(context, .router)
        try router.makeCurveServer(secretKey: keys.secretKey, zapDomain: "hocvu")
        try router.setMaxFrameSize(maxFrame)
        try router.setRouterMandatory()
        endpoint = try router.bind("tcp://127.0.0.1:*")
        self.allowed = allowed
    }

    /// Serves ZAP and collects router messages until `deadline` or `until` holds.
    func pump(seconds: Double = 3, until done: ([ZMQMessage]) -> Bool) throws -> [ZMQMessage] {
        var got = [ZMQMessage]()
        let end = Date().addingTimeInterval(seconds)
        while Date() < end, !done(got) {
            let ready = try zmqPoll([router, zap.socket], timeoutMilliseconds: 20)
            if ready.sockets[1] {
                decisions += try zap.handlePending { key in
                    self.allowed.contains(key) ? .allow(userID: key.hexString) : .deny(reason: "not enrolled")
                }
            }
            while let m = try router.receive() { got.append(m) }
        }
        return got
    }
}

func client(_ server: TestServer, keys: BoxKeyPair, serverKey: Data? = nil) throws -> ZMQSocket {
    let s = try ZMQSocket(server.context, .dealer)
    try s.makeCurveClient(publicKey: keys.publicKey, secretKey: keys.secretKey, serverKey: serverKey ?? server.keys.publicKey)
    try s.connect(server.endpoint)
    return s
}

@Suite("CURVE transport with a ZAP handler, over tcp loopback")
struct CurveTransportTests {
    @Test("an enrolled key gets through, and the hub sees its key as User-Id")
    func enrolledKey() throws {
        let site = BoxKeyPair.generate()
        let server = try TestServer(allowed: [site.publicKey])
        let c = try client(server, keys: site)
        _ = try c.send([Data("hello".utf8)])
        let got = try server.pump { !$0.isEmpty }
        #expect(got.count == 1)
        #expect(got.first?.userID == site.publicKey.hexString)
        #expect(got.first?.frames.last == Data("hello".utf8))
        // The reply reaches the client through the routing id.
        _ = try server.router.send([got[0].frames[0], Data("welcome".utf8)])
        var reply: ZMQMessage?
        for _ in 0..<100 where reply == nil {
            _ = try zmqPoll([c], timeoutMilliseconds: 20)
            reply = try c.receive()
        }
        #expect(reply?.frames == [Data("welcome".utf8)])
    }

    @Test("an unknown key is refused at connect: nothing it sends arrives")
    func unknownKey() throws {
        let server = try TestServer(allowed: [BoxKeyPair.generate().publicKey])
        let stranger = try client(server, keys: .generate())
        _ = try stranger.send([Data("let me in".utf8)])
        let got = try server.pump(seconds: 1) { !$0.isEmpty }
        #expect(got.isEmpty)
        #expect(server.decisions.contains(.deny(reason: "not enrolled")))
    }

    @Test("a client pinning another server key never talks to this server")
    func pinnedServerKey() throws {
        let site = BoxKeyPair.generate()
        let server = try TestServer(allowed: [site.publicKey])
        let c = try client(server, keys: site, serverKey: BoxKeyPair.generate().publicKey)
        _ = try c.send([Data("hello".utf8)])
        #expect(try server.pump(seconds: 1) { !$0.isEmpty }.isEmpty)
    }

    @Test("a frame over the size limit drops the sender; others keep talking")
    func oversizedFrame() throws {
        let a = BoxKeyPair.generate(), b = BoxKeyPair.generate()
        let server = try TestServer(allowed: [a.publicKey, b.publicKey], maxFrame: 1_024)
        let ca = try client(server, keys: a), cb = try client(server, keys: b)
        _ = try ca.send([Data(count: 4_096)])
        _ = try cb.send([Data("small".utf8)])
        let got = try server.pump(seconds: 2) { $0.contains { $0.frames.last == Data("small".utf8) } }
        #expect(got.count == 1 && got[0].userID == b.publicKey.hexString)
    }
}
