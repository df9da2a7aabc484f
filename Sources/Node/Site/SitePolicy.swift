public import Logging
public import Release
import Store

/// When a site runs on the hub's time, as a pure decision: ``SiteClient`` persists, logs and reports
/// what it returns (tested in SitePolicyTests). A wrong commune PC clock is common, so a hub
/// offset is adopted — but a hub (or its host) over 24 h away is not believed unless this machine's
/// own clock is certainly wrong (``Store/NodeStore/isAdoptableOffset(_:systemNow:)``, the one rule).
public struct ClockAdoption: Sendable {
    public enum Decision: Equatable, Sendable {
        /// Run on the hub's time from now on (persist this offset, say so).
        case adopt(Int64)
        /// Too far off to believe: keep this machine's time, and report why (status and log).
        case disagree(String)
        /// Close enough to the offset in use (within a second): nothing changes; a disagreement is over.
        case agree
    }

    /// Offsets closer than this to the one in use are noise (network delay), not a new clock.
    public static let toleranceMilliseconds: Int64 = 1_000
    private var lastMeasured: Int64?

    public init() {}

    /// The hub's clock minus ours as the last WELCOME measured it.
    /// - Returns: nil when there is no measurement or it is the one already judged.
    public mutating func measured(_ offset: Int64?, systemNow: Int64, inUse: Int64) -> Decision? {
        guard let offset, offset != lastMeasured else { return nil }
        lastMeasured = offset
        guard NodeStore.isAdoptableOffset(offset, systemNow: systemNow) else {
            return .disagree(
                "the hub's clock differs from this computer's by \(offset / 1_000) s "
                    + "(over 24 h); not adopted: check the time here (timedatectl) and at the hub")
        }
        // Both are within the adoptable bound, so the difference cannot overflow.
        return abs(offset - inUse) > Self.toleranceMilliseconds ? .adopt(offset) : .agree
    }
}

/// The optional cap on a site's release download speed (for offices whose one link also carries
/// other work), as a pure budget: bytes that may be asked for now, from when the fetch began.
public struct FetchRateCap: Sendable, Equatable {
    /// nil: no cap.
    public let bytesPerSecond: Int?
    public private(set) var requestedBytes = 0
    public private(set) var since: Int64 = 0

    public init(bytesPerSecond: Int?) { self.bytesPerSecond = bytesPerSecond }

    /// A new fetch begins at `now`: nothing asked for yet.
    public mutating func restart(now: Int64) {
        requestedBytes = 0
        since = now
    }

    /// Bytes that may be asked for at `now`: the rate times the time since the fetch began, plus a
    /// tenth of a second's worth so a fetch starts at once, minus what was asked for already.
    public func budget(now: Int64) -> Int {
        guard let rate = bytesPerSecond else { return .max }
        return Int(Double(rate) * Double(now - since) / 1_000) + rate / 10 - requestedBytes
    }

    public mutating func requested(_ bytes: Int) { requestedBytes += bytes }

    /// The chunks to ask for now, within the download's window and this cap (their bytes counted).
    public mutating func nextRequests(_ download: inout ReleaseDownload, now: Int64) -> [String] {
        let hashes = download.nextRequests(now: now, byteBudget: budget(now: now))
        if let fetch = download.current?.fetch { requested(hashes.reduce(0) { $0 + fetch.size(of: $1) }) }
        return hashes
    }
}

/// The site's reconnect timing: libzmq's own jitter is too small for 3,321 sites coming back after
/// a hub restart, so each site adds its own, drawn once (injected, so tests are deterministic).
public enum ReconnectTiming {
    /// The first reconnect delay in milliseconds: `base` plus a jitter from `0...2×base`.
    public static func initialDelay(base: Int32, jitter: (ClosedRange<Int32>) -> Int32) -> Int32 {
        let (twice, overflow) = base.multipliedReportingOverflow(by: 2)
        let drawn = jitter(0...(overflow ? .max - base : max(0, twice)))
        let (sum, over) = base.addingReportingOverflow(drawn)
        return over ? .max : sum
    }
}

/// What a site does about a release it is fetching, as pure decisions: ``SiteClient`` installs,
/// sends and logs what they return (tested in SitePolicyTests).
public enum SiteReleaseFetch {
    public enum Step: Equatable, Sendable {
        /// Every chunk is present: switch to the release now (atomically, in one transaction).
        case install(SignedRelease, Manifest)
        /// Ask the hub for these chunks (within the window and the rate cap).
        case request([String])
        /// Nothing to do this round.
        case wait
    }

    /// The next step of the download: install once complete, otherwise ask for what the window and
    /// the cap allow.
    public static func next(_ download: inout ReleaseDownload, cap: inout FetchRateCap, now: Int64) -> Step {
        if let (release, manifest) = download.readyToInstall { return .install(release, manifest) }
        let hashes = cap.nextRequests(&download, now: now)
        return hashes.isEmpty ? .wait : .request(hashes)
    }

    /// The log line for a chunk from the hub that failed verification: one at its first failure and
    /// one when the hub counts as a bad source for it (status says so), never one per retry (the
    /// fetch asks again after a growing backoff).
    public static func mismatchNote(
        hash: String, refusal: ReleaseRefusal, failures: Int, logged: inout LogOnce
    ) -> (level: Logger.Level, message: String, metadata: [String: String])? {
        if failures == ChunkFetch.badSourceThreshold, logged.first("bad-source:\(hash)") {
            return (
                .error, "A release chunk keeps failing verification; backing off (up to the cap) and asking again",
                ["chunk": hash, "reason": "\(ReleaseRefusal.chunkFailedVerification(hash: hash, times: failures, source: "the hub"))"]
            )
        }
        if logged.first("mismatch:\(hash)") {
            return (.warning, "Dropped a release chunk that failed verification", ["chunk": hash, "reason": "\(refusal)"])
        }
        return nil
    }
}

/// Which of several hub processes a site talks to (docs/multi-hub.md), as a pure decision: the
/// first endpoint while it serves; the next one, in order and round again, once the current one
/// has not given a ready session (WELCOME, then acknowledgements) for `after` plus a jitter drawn
/// per switch, so 3,321 sites leaving a dead hub do not all arrive at the next one in one second.
/// Nothing is resent on a switch beyond what the new hub's WELCOME says it lacks: every hub
/// answers from the shared log, so what any hub acknowledged is known to all.
public struct HubFailover: Sendable, Equatable {
    public let endpoints: [String]
    public private(set) var current = 0
    public let afterMilliseconds: Int64
    /// When to move to the next endpoint; nil while the current one serves.
    public private(set) var deadline: Int64?

    public var endpoint: String { endpoints[current] }
    public var isPrimary: Bool { current == 0 }

    /// - Parameter jitter: a draw from the range it is given (injected: tests are deterministic).
    public init(endpoints: [String], afterMilliseconds: Int64, now: Int64, jitter: (ClosedRange<Int64>) -> Int64) {
        precondition(!endpoints.isEmpty)
        self.endpoints = endpoints
        self.afterMilliseconds = max(1, afterMilliseconds)
        deadline = Self.deadline(now: now, after: self.afterMilliseconds, jitter: jitter)
    }

    private static func deadline(now: Int64, after: Int64, jitter: (ClosedRange<Int64>) -> Int64) -> Int64 {
        let drawn = min(max(0, jitter(0...after)), after)
        let (wait, over) = after.addingReportingOverflow(drawn)
        let (at, late) = now.addingReportingOverflow(wait)
        return over || late ? .max : at
    }

    /// The current hub served (WELCOME or an acknowledgement): stay.
    public mutating func served() { deadline = nil }

    /// The connection was lost, or the hub answered BUSY: start counting, unless already counting.
    public mutating func troubled(now: Int64, jitter: (ClosedRange<Int64>) -> Int64) {
        if deadline == nil { deadline = Self.deadline(now: now, after: afterMilliseconds, jitter: jitter) }
    }

    /// - Returns: the endpoint to move to now, or nil (one endpoint only, or not due yet).
    public mutating func next(now: Int64, jitter: (ClosedRange<Int64>) -> Int64) -> String? {
        guard endpoints.count > 1, let d = deadline, now >= d else { return nil }
        current = (current + 1) % endpoints.count
        deadline = Self.deadline(now: now, after: afterMilliseconds, jitter: jitter)
        return endpoints[current]
    }
}
