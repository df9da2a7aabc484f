import Foundation
import Logging
import Release
import Store
import Wire

/// The hub's side of curriculum releases, driven by the hub loop (same thread, same sockets):
/// accepts a release an admin publishes (fetching its chunks from the admin), installs it,
/// announces it, and serves chunks to sites within a limit of concurrent transfers — each one
/// verified (BLAKE2b-256 and size) before it is sent, so a file that rotted on disk never reaches a site.
struct HubReleases {
    struct Limits {
        var maxConcurrentTransfers: Int
        /// A site that asked for nothing for this long no longer holds a transfer slot.
        var transferIdleMilliseconds: Int64
        var retryAfterSeconds: UInt32
    }

    let trust: TrustPolicy
    let chunks: ChunkStore
    let limits: Limits
    let logger: Logger
    /// The installed release as signed, re-offered to every site that is behind.
    private(set) var current: SignedRelease?
    private(set) var currentVersion: UInt64
    /// The current release's chunks and their sizes (what the hub serves, and checks against).
    private var currentSizes: [String: Int] = [:]
    /// The release an admin is publishing, and the admin connection to fetch its chunks from.
    /// `repair`: the admin re-published the current release to replace chunks found damaged.
    private var publishing: (admin: Data, download: ReleaseDownload, repair: Bool)?
    /// Sites holding a transfer slot → when they last asked.
    private var transfers: [Data: Int64] = [:]
    /// Current chunks found damaged on disk (moved to quarantine), until good bytes are held again.
    private(set) var damaged: Set<String> = []
    /// One log line per chunk and failure class on the serve path, and per publication on the publish path.
    private var logged = LogOnce()
    private var publishLogged = LogOnce()
    /// Alerts for the operator not yet taken into the hub's stats (``takeAlerts()``).
    private var alerts: [String] = []
    /// Chunks verified when read from disk, kept in memory while sites fetch them: during a
    /// rollout every site asks for the same chunks, so each is read and hashed about once per
    /// eviction instead of once per site. Bytes in memory do not rot with the disk; a file that
    /// rots meanwhile is caught the next time it is read.
    private var verified = VerifiedChunks(capacityBytes: 64 << 20)

    init(trust: TrustPolicy, chunks: ChunkStore, limits: Limits, store: NodeStore, logger: Logger) throws {
        self.trust = trust
        self.chunks = chunks
        self.limits = limits
        self.logger = logger
        currentVersion = try store.curriculumVersion() ?? 0
        if let stored = try store.installedRelease(),
           let sigs = try? JSONDecoder().decode([ReleaseSignature].self, from: stored.signatures),
           let m = try? Manifest.decode(stored.manifest)
        {
            current = SignedRelease(manifestBytes: stored.manifest, signatures: sigs)
            currentSizes = Self.sizes(m)
        }
    }

    private static func sizes(_ m: Manifest) -> [String: Int] {
        Dictionary(m.chunks.map { ($0.hash, $0.size) }, uniquingKeysWith: { a, _ in a })
    }

    /// What to send a site that just said HELLO with `siteVersion` installed.
    func offer(forSiteAt siteVersion: UInt64) -> WireMessage? {
        guard let current, siteVersion < currentVersion else { return nil }
        return .releaseOffer(current)
    }

    // MARK: Publishing (admin → hub)

    /// An admin offers a release: refuse it, or start fetching the chunks the hub lacks. The
    /// current release offered again while some of its chunks are missing or damaged on disk is a
    /// repair: those chunks are fetched from the admin and the release is announced again.
    mutating func adminOffered(_ release: SignedRelease, from admin: Data, now: Int64) -> [WireMessage] {
        publishLogged = LogOnce()
        if let current, release.manifestBytes == current.manifestBytes, let manifest = try? Manifest.decode(current.manifestBytes) {
            // Check every chunk of the release now: a re-publish repairs all that rotted, not only
            // what sites happened to ask for.
            for ref in manifest.chunks where chunks.has(ref.hash) { _ = check(ref.hash, size: ref.size, now: now) }
            let missing = chunks.missing(manifest.chunks)
            if !missing.isEmpty {
                var download = ReleaseDownload(trust: trust, installedVersion: currentVersion, window: 8)
                // The release as installed (its verified signatures) is what is announced again.
                download.begin(current, manifest: manifest, missing: missing, source: "the admin")
                publishing = (admin, download, true)
                logger.notice(
                    "Repairing the current release from the admin",
                    metadata: ["release.version": "\(manifest.version)", "chunks.missing": "\(missing.count)"])
                return []
            }
        }
        var download = ReleaseDownload(trust: trust, installedVersion: currentVersion, window: 8)
        switch download.offered(release, nowSeconds: now / 1_000) {
        case .refuse(let refusal):
            logger.error("Refused a published release", metadata: ["reason": "\(refusal)"])
            return [.refuse(code: .releaseRefused, reason: refusal.description, retryAfterSeconds: 0)]
        case .alreadyHave:
            return [.refuse(code: .releaseRefused, reason: "release version \(currentVersion) is already the hub's current release; publish a higher version", retryAfterSeconds: 0)]
        case .fetch(let manifest):
            download.begin(release, manifest: manifest, missing: chunks.missing(manifest.chunks), source: "the admin")
            publishing = (admin, download, false)
            logger.info(
                "Accepting release from admin",
                metadata: ["release.version": "\(manifest.version)", "chunks.missing": "\(download.current!.fetch.remaining)"])
            return []
        }
    }

    enum AdminChunk: Equatable {
        /// Verified and stored.
        case stored
        /// Not from the publishing admin, or not asked for.
        case ignored
        /// Failed verification; asked for again after a backoff.
        case rejected
        /// Failed verification ``ChunkFetch/badSourceThreshold`` times: the publication is
        /// abandoned; send this to the admin.
        case refused(WireMessage)
    }

    /// A chunk from the publishing admin.
    /// - Throws: the chunk store's error (disk full): the caller refuses the publication.
    mutating func adminSentChunk(hash: String, data: Data, from admin: Data, now: Int64) throws -> AdminChunk {
        guard publishing?.admin == admin else { return .ignored }
        switch try publishing!.download.receive(hash: hash, bytes: data, into: chunks, now: now) {
        case .verified:
            if damaged.remove(hash) != nil { logged.forget("damaged:\(hash)") }
            return .stored
        case .mismatch(let refusal, let failures):
            guard failures >= ChunkFetch.badSourceThreshold else {
                if publishLogged.first("admin-mismatch:\(hash)") {
                    logger.warning(
                        "Chunk from admin failed verification; asking again after a backoff",
                        metadata: ["chunk": "\(hash)", "reason": "\(refusal)"])
                }
                return .rejected
            }
            let reason =
                "\(ReleaseRefusal.chunkFailedVerification(hash: hash, times: failures, source: "the admin")) (its bytes do not "
                + "match its name or the manifest's size); check the release with `hocvu admin release verify` and rebuild it "
                + "or copy its chunks/ directory again"
            logger.error("Refused a published release: a chunk keeps failing verification", metadata: ["chunk": "\(hash)", "reason": "\(reason)"])
            publishing = nil
            return .refused(.refuse(code: .releaseRefused, reason: reason, retryAfterSeconds: 0))
        case .unexpected:
            return .ignored
        }
    }

    /// Stops fetching from the publishing admin (the hub refused the publication).
    mutating func abandonPublishing() { publishing = nil }

    /// Requests to the admin, or — once every chunk is held — the install and its announcements.
    mutating func advancePublishing(now: Int64, store: NodeStore) throws -> (toAdmin: [WireMessage], admin: Data?, announce: WireMessage?) {
        guard var p = publishing else { return ([], nil, nil) }
        defer { if publishing != nil { publishing = p } }
        if let (release, manifest) = p.download.readyToInstall {
            publishing = nil
            if p.repair {
                damaged.subtract(manifest.chunks.map(\.hash))
                logger.notice("Current release repaired; announcing it again", metadata: ["release.version": "\(manifest.version)"])
                // Sites backing off from a chunk the hub could not serve ask for it again at once.
                return ([.published(version: manifest.version)], p.admin, .releaseOffer(release))
            }
            try store.installRelease(manifest.curriculum, manifest: release.manifestBytes, signatures: release.signaturesJSON)
            try store.retryQuarantine()  // records about lessons this release adds are valid now
            current = release
            currentVersion = manifest.version
            currentSizes = Self.sizes(manifest)
            verified = VerifiedChunks(capacityBytes: verified.capacityBytes)
            damaged = damaged.intersection(currentSizes.keys)
            let removed = chunks.collect(keeping: Set(currentSizes.keys))
            logger.notice(
                "Release installed at the hub; announcing to sites",
                metadata: ["release.version": "\(manifest.version)", "chunks.collected": "\(removed)"])
            return ([.published(version: manifest.version)], p.admin, .releaseOffer(release))
        }
        let hashes = p.download.nextRequests(now: now)
        return (hashes.isEmpty ? [] : [.chunkRequest(hashes)], p.admin, nil)
    }

    // MARK: Serving (hub → site)

    enum ServeDecision {
        case send([String])
        case tryLater(UInt32)
    }

    /// A site asks for chunks: within the transfer limit, the ones of the hub's current release.
    mutating func siteRequested(_ hashes: [String], from routing: Data, now: Int64) -> ServeDecision {
        transfers = transfers.filter { now - $0.value < limits.transferIdleMilliseconds }
        if transfers[routing] == nil && transfers.count >= limits.maxConcurrentTransfers {
            // Spread the comebacks so deferred sites do not return in one wave.
            return .tryLater(limits.retryAfterSeconds + UInt32.random(in: 0...limits.retryAfterSeconds / 2))
        }
        transfers[routing] = now
        return .send(hashes.filter { currentSizes[$0] != nil })
    }

    enum ServedChunk: Equatable {
        /// Verified bytes: send them.
        case data(Data)
        /// Found damaged: moved to quarantine, not sent (an alert is queued the first time).
        case damaged
        /// Not on disk (quarantined earlier, removed) or unreadable: not sent.
        case unavailable
    }

    /// A current chunk to send to a site, checked first: a damaged file is quarantined and
    /// reported (once), and re-fetched from an admin connected and publishing a release that has it.
    mutating func chunkToServe(_ hash: String, now: Int64) -> ServedChunk {
        guard let size = currentSizes[hash] else { return .unavailable }
        if let data = verified.get(hash) { return .data(data) }
        let served = check(hash, size: size, now: now)
        if case .data(let data) = served { verified.put(hash, data) }
        return served
    }

    private mutating func check(_ hash: String, size: Int, now: Int64) -> ServedChunk {
        guard chunks.has(hash) else {
            if !damaged.contains(hash), logged.first("missing:\(hash)") {
                logger.error(
                    "A chunk of the current release is missing from the hub's chunk directory; re-publish the release to restore it",
                    metadata: ["chunk": "\(hash)", "release.version": "\(currentVersion)"])
            }
            return .unavailable
        }
        do {
            let data = try chunks.readVerified(hash, size: size)
            if damaged.remove(hash) != nil { logged.forget("damaged:\(hash)") }  // restored by hand
            return .data(data)
        } catch ChunkStoreError.corrupt(let why) {
            var whereTo = "could not be moved aside"
            do { whereTo = try chunks.quarantine(hash, now: now) } catch {
                if logged.first("quarantine-failed:\(hash)") {
                    logger.error("Cannot quarantine a damaged chunk", metadata: ["chunk": "\(hash)", "error": "\(error)"])
                }
            }
            damaged.insert(hash)
            let ref = Manifest.ChunkRef(hash: hash, size: size)
            var repair = "re-publish release \(currentVersion) (hocvu admin release publish) to repair it"
            if publishing != nil, publishing!.download.current?.manifest.chunks.contains(ref) == true {
                publishing!.download.refetch(ref)
                repair = "re-fetching it from the admin publishing now"
            }
            if logged.first("damaged:\(hash)") {
                let alert = "chunk \(hash) of release \(currentVersion) was damaged on the hub's disk (\(why)); moved to \(whereTo); \(repair)"
                logger.critical("A release chunk is damaged on the hub's disk; not serving it", metadata: ["chunk": "\(hash)", "detail": "\(alert)"])
                alerts.append(alert)
            }
            return .damaged
        } catch {
            if logged.first("unreadable:\(hash)") {
                logger.error("Cannot read a chunk to serve", metadata: ["chunk": "\(hash)", "error": "\(error)"])
            }
            return .unavailable
        }
    }

    var activeTransfers: Int { transfers.count }

    /// Chunks in the verified in-memory cache (for tests and status).
    var cachedChunks: Int { verified.count }

    /// Alerts raised since the last call (a damaged chunk, once each), for the hub's stats.
    mutating func takeAlerts() -> [String] {
        defer { alerts = [] }
        return alerts
    }
}
