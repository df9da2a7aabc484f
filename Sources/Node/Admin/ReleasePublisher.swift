public import Foundation
public import Logging
public import Release
public import Sodium
import Transport
import Wire

/// `hocvu admin release publish`: offers a signed release to the hub over CURVE (the admin's
/// transport key must be in the hub's trust file), then answers the hub's chunk requests until
/// the hub says the release is installed, or refuses it.
public struct ReleasePublisher {
    public struct Result: Sendable, Equatable {
        public var version: UInt64
        public var chunksSent: Int
        public var bytesSent: Int
    }

    let hubEndpoint: String
    let hubTransportKey: Data
    let transportKeys: BoxKeyPair
    let logger: Logger
    public var idleTimeoutSeconds = 60

    public init(hubEndpoint: String, hubTransportKey: Data, transportKeys: BoxKeyPair, logger: Logger) {
        self.hubEndpoint = hubEndpoint
        self.hubTransportKey = hubTransportKey
        self.transportKeys = transportKeys
        self.logger = logger
    }

    public func publish(_ bundle: ReleaseBundle) throws -> Result {
        let release = try bundle.signed()
        let manifest = try Manifest.decode(release.manifestBytes)
        let chunks = try bundle.chunkStore()
        let context = try ZMQContext()
        let dealer = try ZMQSocket(context, .dealer)
        try dealer.makeCurveClient(publicKey: transportKeys.publicKey, secretKey: transportKeys.secretKey, serverKey: hubTransportKey)
        try dealer.setMaxFrameSize(Int64(WireLimits.maxPayloadBytes + 4_096))
        try dealer.setHighWaterMarks(send: 64, receive: 64)
        let monitor = try dealer.monitor(context)
        try dealer.connect(hubEndpoint)
        var result = Result(version: manifest.version, chunksSent: 0, bytesSent: 0)
        var lastHeard = Date()
        var offered = false
        var connectFailures = 0
        while true {
            let readable = try zmqPoll([dealer, monitor], timeoutMilliseconds: 500)
            if readable.sockets[1] {
                for event in try monitor.receiveEvents() {
                    switch event {
                    case .handshakeSucceeded:
                        // Offer on every (re)connection: the hub resumes from the chunks it holds.
                        _ = try dealer.send(WireCodec.encode(.releaseOffer(release), id: 1))
                        offered = true
                        lastHeard = Date()
                    case .handshakeFailed:
                        throw NodeError.handshakeFailed
                    case .connectRetried:
                        connectFailures += 1
                    default:
                        break
                    }
                }
            }
            if readable.sockets[0] {
                while let m = try dealer.receive(maxFrames: 3) {
                    lastHeard = Date()
                    guard let (_, message) = try? WireCodec.decode(m.frames) else { continue }
                    switch message {
                    case .chunkRequest(let hashes):
                        for hash in hashes {
                            let data = try chunks.read(hash)
                            _ = try dealer.send(WireCodec.encode(.chunk(hash: hash, data: data), id: 0))
                            result.chunksSent += 1
                            result.bytesSent += data.count
                        }
                    case .published(let version):
                        guard version == manifest.version else { continue }
                        return result
                    case .refuse(_, let reason, _):
                        throw NodeError.refused(reason)
                    default:
                        continue
                    }
                }
            }
            let idle = Int(Date().timeIntervalSince(lastHeard))
            // Never connected at all: say so (soon), instead of blaming the keys after a minute.
            if !offered && connectFailures >= 3 && idle >= 5 { throw NodeError.unreachable(hubEndpoint) }
            if idle >= idleTimeoutSeconds { throw offered ? NodeError.timedOut(idle) : NodeError.handshakeFailed }
        }
    }
}
