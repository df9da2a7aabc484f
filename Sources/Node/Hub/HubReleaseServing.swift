public import Foundation
public import Logging
import Release

/// How the hub serves release chunks to sites, as a pure policy: it decides, ``HubServer`` (with
/// ``HubReleases``'s chunk files) carries out. No disk, no clock, no randomness of its own — time
/// and the random jitter come from the caller, and what the disk held comes back as a
/// ``ReadOutcome`` — so every serving rule is tested without sockets or files
/// (HubReleaseServingTests): the transfer limit and its spread comebacks, chunks outside the
/// current release, a rotted chunk quarantined and alerted once, logs once per chunk.
public struct HubReleaseServing: Sendable {
    public struct Limits: Sendable, Equatable {
        public var maxConcurrentTransfers: Int
        /// A site that asked for nothing for this long no longer holds a transfer slot.
        public var transferIdleMilliseconds: Int64
        public var retryAfterSeconds: UInt32
        public init(maxConcurrentTransfers: Int, transferIdleMilliseconds: Int64, retryAfterSeconds: UInt32) {
            self.maxConcurrentTransfers = maxConcurrentTransfers
            self.transferIdleMilliseconds = transferIdleMilliseconds
            self.retryAfterSeconds = retryAfterSeconds
        }
    }

    public enum Action: Equatable, Sendable {
        /// Verified bytes of a current chunk: send them to the site.
        case send(hash: String, data: Data)
        /// The site asked while every transfer slot is taken: tell it when to come back.
        case tryLater(seconds: UInt32, reason: String)
        /// Read the chunk from disk, checking BLAKE2b-256 and size, and report with ``read(_:_:forSite:)``.
        case read(hash: String, size: Int)
        /// The file rotted: move it aside, then report with ``quarantined(_:why:movedTo:refetching:)``.
        case quarantine(hash: String, why: String)
        /// Refused requests, to count per reason and log at the hub's bounded rate.
        case refuse(DropReason, count: Int, detail: String)
        /// A refusal this policy already logged (once per chunk): count it, log nothing.
        case countLogged(DropReason)
        /// For the operator (status and metrics): a current chunk is damaged.
        case alert(String)
        case log(Logger.Level, String, metadata: [String: String])
    }

    /// What reading a chunk file found.
    public enum ReadOutcome: Equatable, Sendable {
        case verified(Data)
        /// No such file (removed, or quarantined earlier).
        case missing
        /// Its bytes do not match its name or the manifest's size.
        case corrupt(String)
        /// Unreadable for another reason (permissions, I/O error).
        case failed(String)
    }

    public let limits: Limits
    /// The release the hub serves (0: none) and its chunks with their sizes.
    public private(set) var currentVersion: UInt64
    private var currentSizes: [String: Int]
    /// Sites holding a transfer slot → when they last asked.
    private var transfers: [Data: Int64] = [:]
    /// Current chunks found damaged on disk (moved to quarantine), until good bytes are held again.
    public private(set) var damaged: Set<String> = []
    /// One log line per chunk and failure class.
    private var logged = LogOnce()
    /// Chunks verified when read from disk, kept in memory while sites fetch them: during a
    /// rollout every site asks for the same chunks, so each is read and hashed about once per
    /// eviction instead of once per site. Bytes in memory do not rot with the disk; a file that
    /// rots meanwhile is caught the next time it is read.
    private var verified: VerifiedChunks

    public init(limits: Limits, currentVersion: UInt64, sizes: [String: Int], cacheBytes: Int = 64 << 20) {
        self.limits = limits
        self.currentVersion = currentVersion
        self.currentSizes = sizes
        self.verified = VerifiedChunks(capacityBytes: cacheBytes)
    }

    public var activeTransfers: Int { transfers.count }
    /// Chunks in the verified in-memory cache.
    public var cachedChunks: Int { verified.count }
    public func isCurrent(_ hash: String) -> Bool { currentSizes[hash] != nil }

    /// A site asks for chunks: within the transfer limit, the ones of the current release.
    /// - Parameter jitter: draws the extra delay for a deferred site, from `0...retryAfter/2`
    ///   (injected so tests are deterministic); deferred sites must not come back in one wave.
    public mutating func siteRequested(
        _ hashes: [String], from routing: Data, now: Int64, jitter: (ClosedRange<UInt32>) -> UInt32
    ) -> [Action] {
        transfers = transfers.filter { now - $0.value < limits.transferIdleMilliseconds }
        if transfers[routing] == nil && transfers.count >= limits.maxConcurrentTransfers {
            let seconds = limits.retryAfterSeconds + jitter(0...limits.retryAfterSeconds / 2)
            return [.tryLater(seconds: seconds, reason: "the hub is serving its limit of \(limits.maxConcurrentTransfers) release transfers")]
        }
        transfers[routing] = now
        var actions: [Action] = []
        var unknown = 0
        for hash in hashes {
            guard let size = currentSizes[hash] else {
                unknown += 1
                continue
            }
            // Each chunk is checked (BLAKE2b-256 and size) before it first goes: a file that rotted
            // on disk is quarantined and reported once, never sent.
            if let data = verified.get(hash) { actions.append(.send(hash: hash, data: data)) } else { actions.append(.read(hash: hash, size: size)) }
        }
        if unknown > 0 { actions.append(.refuse(.unknownChunk, count: unknown, detail: "chunks not in the current release asked for")) }
        return actions
    }

    /// What the disk held for a current chunk. `forSite`: a site asked for it (send it, count a
    /// failure); otherwise the hub is checking its chunks (a re-publish repairs every rotted one).
    public mutating func read(_ hash: String, _ outcome: ReadOutcome, forSite: Bool) -> [Action] {
        var actions: [Action] = []
        switch outcome {
        case .verified(let data):
            if damaged.remove(hash) != nil { logged.forget("damaged:\(hash)") }  // restored by hand
            guard forSite else { return [] }
            if currentSizes[hash] != nil { verified.put(hash, data) }
            return [.send(hash: hash, data: data)]
        case .missing:
            if !damaged.contains(hash), logged.first("missing:\(hash)") {
                actions.append(.log(
                    .error, "A chunk of the current release is missing from the hub's chunk directory; re-publish the release to restore it",
                    metadata: ["chunk": hash, "release.version": "\(currentVersion)"]))
            }
        case .corrupt(let why):
            damaged.insert(hash)
            actions.append(.quarantine(hash: hash, why: why))
        case .failed(let error):
            if logged.first("unreadable:\(hash)") {
                actions.append(.log(.error, "Cannot read a chunk to serve", metadata: ["chunk": hash, "error": error]))
            }
        }
        if forSite { actions.append(.countLogged(.chunkUnavailable)) }
        return actions
    }

    /// The rotted file was moved aside (`movedTo`: where, or why not); `refetching`: an admin
    /// publishing now has the chunk and it is asked for again. Alerts once per damaged chunk.
    public mutating func quarantined(_ hash: String, why: String, movedTo: QuarantineOutcome, refetching: Bool) -> [Action] {
        var actions: [Action] = []
        var whereTo = "could not be moved aside"
        switch movedTo {
        case .moved(let path): whereTo = path
        case .notMoved(let reason):
            if logged.first("quarantine-failed:\(hash)") {
                actions.append(.log(.error, "Cannot quarantine a damaged chunk", metadata: ["chunk": hash, "error": reason]))
            }
        }
        let repair = refetching
            ? "re-fetching it from the admin publishing now"
            : "re-publish release \(currentVersion) (hocvu admin release publish) to repair it"
        if logged.first("damaged:\(hash)") {
            let alert = "chunk \(hash) of release \(currentVersion) was damaged on the hub's disk (\(why)); moved to \(whereTo); \(repair)"
            actions.append(.log(.critical, "A release chunk is damaged on the hub's disk; not serving it", metadata: ["chunk": hash, "detail": alert]))
            actions.append(.alert(alert))
        }
        return actions
    }

    /// Where a rotted chunk file went, or why it could not be moved aside.
    public enum QuarantineOutcome: Equatable, Sendable {
        case moved(to: String)
        case notMoved(reason: String)
    }

    /// Good bytes of `hash` are held again (an admin sent them).
    public mutating func restored(_ hash: String) {
        if damaged.remove(hash) != nil { logged.forget("damaged:\(hash)") }
    }

    /// A re-publish of the current release restored these chunks.
    public mutating func repaired(_ hashes: [String]) { damaged.subtract(hashes) }

    /// A new release is installed: serve its chunks; the cache of the old one goes.
    public mutating func installed(version: UInt64, sizes: [String: Int]) {
        currentVersion = version
        currentSizes = sizes
        verified = VerifiedChunks(capacityBytes: verified.capacityBytes)
        damaged = damaged.intersection(sizes.keys)
    }
}
