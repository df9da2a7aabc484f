public import Foundation

/// One node's progress towards a newer release, as a pure state machine: which offer it accepted,
/// which chunks are still missing, and when it may switch. The I/O layer writes chunks and
/// installs; this type decides.
public struct ReleaseDownload: Sendable {
    public enum Decision: Equatable, Sendable {
        /// Verified and newer: stage it, then ``begin(_:manifest:missing:)`` with the chunks not held.
        case fetch(Manifest)
        /// The same release is already installed or being fetched.
        case alreadyHave
        case refuse(ReleaseRefusal)
    }

    public let trust: TrustPolicy
    public let window: Int
    public private(set) var installedVersion: UInt64
    public private(set) var current: (release: SignedRelease, manifest: Manifest, fetch: ChunkFetch)?
    /// Why the last offer was refused, until a release installs.
    public private(set) var offerRefusal: ReleaseRefusal?

    /// What is wrong, for status: the last refused offer, else a chunk the peer keeps getting wrong
    /// ("chunk … failed verification 3 times from the hub"), cleared when that chunk arrives.
    public var lastRefusal: ReleaseRefusal? { offerRefusal ?? current?.fetch.sourceProblem }

    public init(trust: TrustPolicy, installedVersion: UInt64, window: Int = 8) {
        self.trust = trust
        self.installedVersion = installedVersion
        self.window = window
    }

    public var fetchingVersion: UInt64? { current?.manifest.version }

    /// Applies every acceptance rule (signatures, consistency, rollback, expiry) to an offer.
    public mutating func offered(_ release: SignedRelease, nowSeconds: Int64) -> Decision {
        if let c = current, c.release.manifestBytes == release.manifestBytes { return .alreadyHave }
        do {
            let m = try ReleaseVerifier.verify(release, trust: trust, current: installedVersion, now: nowSeconds)
            if let c = current, c.manifest.version >= m.version { return .alreadyHave }
            return .fetch(m)
        } catch {
            if case .rollback(let offered, let installed) = error, offered == installed { return .alreadyHave }
            offerRefusal = error
            return .refuse(error)
        }
    }

    /// Starts fetching an accepted release (replacing an older one being fetched).
    /// - Parameters:
    ///   - backoff: how retries of a failed chunk are spaced (default: scaled to `timeout`).
    ///   - source: who the chunks come from, for messages ("the hub", "the admin").
    public mutating func begin(
        _ release: SignedRelease, manifest: Manifest, missing: [Manifest.ChunkRef], timeout: Int64 = 30_000,
        backoff: RetryBackoff.Policy? = nil, source: String = "the peer", seed: UInt64 = .random(in: .min ... .max)
    ) {
        current = (
            release, manifest,
            ChunkFetch(missing: missing, window: window, timeout: timeout, backoff: backoff, source: source, seed: seed)
        )
    }

    public mutating func nextRequests(now: Int64, byteBudget: Int = .max) -> [String] {
        current?.fetch.nextRequests(now: now, byteBudget: byteBudget) ?? []
    }

    public mutating func received(hash: String, bytes: Data, now: Int64) -> ChunkFetch.Outcome {
        guard current != nil else { return .unexpected }
        return current!.fetch.received(hash: hash, bytes: bytes, now: now)
    }

    public mutating func stored(_ hash: String) { current?.fetch.stored(hash) }

    /// Every chunk is present: the release to switch to.
    public var readyToInstall: (release: SignedRelease, manifest: Manifest)? {
        guard let c = current, c.fetch.isComplete else { return nil }
        return (c.release, c.manifest)
    }

    public mutating func didInstall(_ version: UInt64) {
        installedVersion = max(installedVersion, version)
        if let c = current, c.manifest.version <= installedVersion { current = nil }
        offerRefusal = nil
    }

    public mutating func connectionLost() { current?.fetch.connectionLost() }

    /// The peer is busy: nothing is asked before `seconds` (clamped into 1…3600) have passed.
    public mutating func tryLater(now: Int64, seconds: UInt32) { current?.fetch.tryLater(now: now, seconds: seconds) }

    /// The peer announced the release being fetched again: chunks backing off are asked for now.
    public mutating func retryNow() { current?.fetch.retryNow() }

    /// A chunk believed held is needed again (found damaged): fetch it too.
    public mutating func refetch(_ ref: Manifest.ChunkRef) { current?.fetch.add(ref) }
}
