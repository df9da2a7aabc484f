public import Foundation
public import Merge
public import Wire

/// The site's side of a sync connection, as a pure state machine: it decides, the I/O loop does.
///
/// Every connection starts with HELLO/WELCOME; everything uploaded afterwards is derived from what
/// the hub says it holds (`hubHas`) and what is in flight, never from a queue that survived a
/// reconnect. A message not acknowledged within ``ackTimeout`` is presumed lost and its batches
/// become eligible again (the hub treats a replay as a no-op).
public struct SiteSession: Sendable {
    public enum State: Equatable, Sendable {
        case disconnected
        case awaitingWelcome(since: Int64)
        case ready
        /// The hub said BUSY, or refused a message of ours as malformed or out of protocol: say
        /// HELLO again at `until` (the connection itself stays up).
        case backingOff(until: Int64)
        /// The hub refused us for good (revoked, wrong identity, unsupported version): stop.
        case refused(String)
    }

    public enum Action: Equatable, Sendable {
        case send(WireMessage, id: UInt64)
        /// Send the own-origin batches beyond `after`, in at most `messages` messages.
        case upload(after: VersionVector, messages: Int)
        case stop(reason: String)
    }

    public let origin: Origin
    public let ackTimeout: Int64
    /// An idle connection sends an empty BATCHES this often: the hub's ACK keeps both sides'
    /// "last heard" true while nothing else moves (status from facts, not from the last upload).
    public var keepaliveInterval: Int64 = 30_000
    private var lastSentAt: Int64 = 0
    public let welcomeTimeout: Int64
    public private(set) var state: State = .disconnected
    /// What the hub has acknowledged holding (after its commit).
    public private(set) var hubHas = VersionVector()
    /// `hubHas` plus what is in flight: nothing at or below is sent again until a timeout.
    public private(set) var sentUpTo = VersionVector()
    public private(set) var credit: UInt32 = 0
    private var inFlight: [UInt64: (sentAt: Int64, upTo: VersionVector)] = [:]
    private var nextID: UInt64 = 1
    /// The last time anything was heard from the hub (milliseconds).
    public private(set) var lastHeard: Int64?
    /// Hub clock minus ours, from the last WELCOME (milliseconds).
    public private(set) var clockOffset: Int64?
    /// The last home-feed entry held, sent in every HELLO (nil: this site does not take the feed).
    public var homeFeedCursor: UInt64?
    /// BLAKE2b-256 of the installed manifest, sent in every HELLO so the hub may send the next
    /// release as deltas against it (nil: whole offers and chunks).
    public var installedManifestHash: Data?

    public init(origin: Origin, ackTimeout: Int64 = 15_000, welcomeTimeout: Int64 = 10_000) {
        self.origin = origin
        self.ackTimeout = ackTimeout
        self.welcomeTimeout = welcomeTimeout
    }

    public var unacknowledgedMessages: Int { inFlight.count }

    /// Seconds to wait before a new HELLO after the hub refused one of our messages as malformed or
    /// out of protocol: long enough not to hammer a hub that keeps refusing, short enough to recover.
    public static let minimumPauseAfterProtocolRefusal: UInt32 = 30

    private mutating func takeID() -> UInt64 {
        defer { nextID += 1 }
        return nextID
    }

    /// The transport completed a (re)connection: say hello.
    public mutating func connected(now: Int64, knowledge: VersionVector, releaseVersion: UInt64) -> [Action] {
        if case .refused = state { return [] }
        state = .awaitingWelcome(since: now)
        inFlight = [:]
        lastSentAt = now
        let hello = WireMessage.Hello(
            origin: origin, clockMilliseconds: now, releaseVersion: releaseVersion, knowledge: knowledge,
            homeFeedCursor: homeFeedCursor, installedManifestHash: installedManifestHash)
        return [.send(.hello(hello), id: takeID())]
    }

    public mutating func disconnected() {
        if case .refused = state { return }
        state = .disconnected
        inFlight = [:]
        sentUpTo = hubHas
    }

    /// Start over after `seconds`: forget what was in flight and say HELLO again from ``tick``
    /// (the link itself stays up, so no new handshake will come). For BUSY, a refused message, and
    /// a local disk too full to take what the hub sends.
    public mutating func pause(now: Int64, seconds: UInt32) {
        if case .refused = state { return }
        disconnected()
        state = .backingOff(until: now + Int64(seconds) * 1_000)
    }

    public mutating func received(_ message: WireMessage, now: Int64) -> [Action] {
        lastHeard = now
        switch message {
        case .welcome(let w):
            guard case .awaitingWelcome = state else { return [] }
            state = .ready
            hubHas = w.have
            sentUpTo = w.have
            credit = ProtocolLimits.clampedCredit(w.credit)
            // Decoding bounded the hub's reading; our own clock could still be anything.
            let (offset, overflow) = w.clockMilliseconds.subtractingReportingOverflow(now)
            clockOffset = overflow ? nil : offset
            return uploadIfPossible()
        case .ack(let a):
            guard state == .ready else { return [] }
            inFlight[a.ackedMessageID] = nil
            hubHas = hubHas.merged(with: a.have)
            sentUpTo = sentUpTo.merged(with: hubHas)
            credit = ProtocolLimits.clampedCredit(a.credit)
            return uploadIfPossible()
        case .refuse(let code, let reason, let retry):
            switch code {
            case .busy:
                pause(now: now, seconds: ProtocolLimits.clampedRetryAfter(retry))  // the hub's delay, clamped
                return []
            case .releaseRefused:
                return []  // about a release, not this connection
            case .protocolViolation, .malformed:
                // About one message (ours, or one the hub could not read), not about this site:
                // a bug or a hub restarted under us. Start over after a pause, never stop for it.
                pause(now: now, seconds: max(Self.minimumPauseAfterProtocolRefusal, ProtocolLimits.clampedRetryAfter(retry)))
                return []
            default:
                state = .refused("\(code): \(reason)")
                return [.stop(reason: reason)]
            }
        case .hello, .batches:
            return []  // not for a site
        case .releaseOffer, .releaseOfferDelta, .chunkRequest, .wholeChunkRequest, .chunk, .chunkDelta, .tryLater, .published:
            return []  // releases: the client's ReleaseDownload
        case .homeFeed:
            return []  // applied by the client, which then moves `homeFeedCursor`
        }
    }

    /// New local changes were sealed.
    public mutating func localChangesAvailable() -> [Action] { uploadIfPossible() }

    /// The I/O loop sent message `id` carrying own batches up to `upTo`.
    public mutating func didSend(id: UInt64, upTo: VersionVector, now: Int64) {
        inFlight[id] = (now, upTo)
        sentUpTo = sentUpTo.merged(with: upTo)
        lastSentAt = max(lastSentAt, now)
    }

    /// A fresh message id for an upload the I/O loop is about to send.
    public mutating func uploadMessageID() -> UInt64 { takeID() }

    /// Timers: a missing WELCOME or ACK means the message or the connection was lost.
    public mutating func tick(now: Int64, knowledge: VersionVector, releaseVersion: UInt64) -> [Action] {
        switch state {
        case .awaitingWelcome(let since) where now - since >= welcomeTimeout:
            return connected(now: now, knowledge: knowledge, releaseVersion: releaseVersion)
        case .backingOff(let until) where now >= until:
            return connected(now: now, knowledge: knowledge, releaseVersion: releaseVersion)
        case .ready:
            let expired = inFlight.filter { now - $0.value.sentAt >= ackTimeout }
            guard !expired.isEmpty else {
                guard inFlight.isEmpty, now - lastSentAt >= keepaliveInterval else { return [] }
                let id = takeID()
                inFlight[id] = (now, VersionVector())
                lastSentAt = now
                return [.send(.batches([]), id: id)]
            }
            inFlight = [:]
            sentUpTo = hubHas
            return uploadIfPossible()
        default:
            return []
        }
    }

    private func uploadIfPossible() -> [Action] {
        guard state == .ready else { return [] }
        let room = Int(credit) - inFlight.count
        guard room > 0 else { return [] }
        return [.upload(after: sentUpTo, messages: room)]
    }
}
