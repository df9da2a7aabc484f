import Foundation
import Logging
import Release
import Sodium
import Store
import Transport
import Wire

/// The hub's side of curriculum releases, driven by the hub loop (same thread, same sockets):
/// accepts a release an admin publishes (fetching its chunks from the admin), installs it,
/// announces it, and serves chunks to sites within a limit of concurrent transfers — each one
/// verified (BLAKE2b-256 and size) before it is sent, so a file that rotted on disk never reaches a site.
struct HubReleases {
    typealias Limits = HubReleaseServing.Limits

    let trust: TrustPolicy
    let chunks: ChunkStore
    let logger: Logger
    /// The installed release as signed, re-offered to every site that is behind.
    private(set) var current: SignedRelease?
    var currentVersion: UInt64 { serving.currentVersion }
    /// What to serve whom (pure): transfer slots, damaged chunks, the verified cache.
    var serving: HubReleaseServing
    /// The release an admin is publishing, and the admin connection to fetch its chunks from.
    /// `repair`: the admin re-published the current release to replace chunks found damaged.
    private var publishing: (admin: Data, download: ReleaseDownload, repair: Bool)?
    private var publishLogged = LogOnce()
    /// Alerts from checking every chunk on a re-publish, not yet taken into the hub's stats (``takeAlerts()``).
    private var alerts: [String] = []
    /// The release installed before the current one (BLAKE2b-256 of its manifest bytes): a site
    /// that names it in HELLO gets the current one as deltas (docs/releases.md, "Deltas"). Kept in
    /// memory only: after a hub restart sites get whole offers and chunks until the next release.
    private var previous: (manifestHash: Data, offer: WireMessage?)?
    /// For each chunk of the current release that the previous one lacks: the previous release's
    /// chunks it is encoded against (``ReleaseDelta/bases(new:old:)``); kept on disk for that.
    private var deltaBases: [String: [String]] = [:]
    /// Deltas computed so far, by chunk: (bases, delta), or nil when a whole chunk is smaller.
    private var deltas: [String: (bases: [String], delta: Data)?] = [:]
    /// Whole chunks as encoded CHUNK frames, sent to every site without a copy (a rollout sends
    /// each chunk to many sites): bounded, oldest first out, emptied when a release installs.
    private var frames: [String: (envelope: Data, payload: SharedFrame)] = [:]
    private var frameOrder: [String] = []
    private var frameBytes = 0
    static let frameCacheBytes = 64 << 20

    init(trust: TrustPolicy, chunks: ChunkStore, limits: Limits, store: NodeStore, logger: Logger) throws {
        self.trust = trust
        self.chunks = chunks
        self.logger = logger
        var sizes: [String: Int] = [:]
        if let stored = try store.installedRelease(),
           let sigs = try? JSONDecoder().decode([ReleaseSignature].self, from: stored.signatures),
           let m = try? Manifest.decode(stored.manifest)
        {
            current = SignedRelease(manifestBytes: stored.manifest, signatures: sigs)
            sizes = Self.sizes(m)
        }
        serving = HubReleaseServing(limits: limits, currentVersion: try store.curriculumVersion() ?? 0, sizes: sizes)
    }

    private static func sizes(_ m: Manifest) -> [String: Int] {
        Dictionary(m.chunks.map { ($0.hash, $0.size) }, uniquingKeysWith: { a, _ in a })
    }

    /// What to send a site that just said HELLO with `siteVersion` installed (and, if it takes
    /// deltas, the hash of its installed manifest): the current release, as a delta when the site
    /// holds the previous one.
    func offer(forSiteAt siteVersion: UInt64, manifestHash: Data? = nil) -> WireMessage? {
        guard let current, siteVersion < currentVersion else { return nil }
        if let manifestHash, let previous, previous.manifestHash == manifestHash, let delta = previous.offer { return delta }
        return .releaseOffer(current)
    }

    /// The message carrying chunk `hash` (verified `data`) to a site: a delta against chunks of
    /// the previous release when the site holds it (`siteManifestHash`) and that saves bytes, else
    /// the whole chunk. `whole`: the site asked for whole chunks (a delta failed there).
    mutating func chunkMessage(_ hash: String, data: Data, siteManifestHash: Data?, whole: Bool) -> WireMessage {
        guard !whole, let previous, let siteManifestHash, previous.manifestHash == siteManifestHash,
              let bases = deltaBases[hash]
        else { return .chunk(hash: hash, data: data) }
        if let known = deltas[hash] {
            guard let known else { return .chunk(hash: hash, data: data) }
            return .chunkDelta(hash: hash, bases: known.bases, delta: known.delta)
        }
        // Only bases that are on disk and intact: the delta's copies name them by position.
        var names: [String] = [], bytes: [Data] = []
        for b in bases {
            guard let d = try? chunks.read(b), Chunker.name(d) == b else { continue }
            names.append(b)
            bytes.append(d)
        }
        guard let delta = ReleaseDelta.worthwhileDelta(data, bases: bytes) else {
            deltas[hash] = .some(nil)
            return .chunk(hash: hash, data: data)
        }
        deltas[hash] = (names, delta)
        return .chunkDelta(hash: hash, bases: names, delta: delta)
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
            for ref in manifest.chunks where chunks.has(ref.hash) { carryOut(check(ref.hash, size: ref.size, forSite: false, now: now)) }
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
        switch HubReleasePublishing.offer(download.offered(release, nowSeconds: now / 1_000), currentVersion: currentVersion) {
        case .refuse(let reply, let refusal):
            if let refusal { logger.error("Refused a published release", metadata: ["reason": "\(refusal)"]) }
            return [reply]
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
            serving.restored(hash)
            return .stored
        case .mismatch(let refusal, let failures):
            switch HubReleasePublishing.chunkFailed(hash: hash, refusal: refusal, failures: failures, logged: &publishLogged) {
            case .askAgain(let log):
                if let log {
                    logger.warning(
                        "Chunk from admin failed verification; asking again after a backoff", metadata: ["chunk": "\(hash)", "reason": "\(log)"])
                }
                return .rejected
            case .refusePublication(let reply, let reason):
                logger.error("Refused a published release: a chunk keeps failing verification", metadata: ["chunk": "\(hash)", "reason": "\(reason)"])
                publishing = nil
                return .refused(reply)
            }
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
                serving.repaired(manifest.chunks.map(\.hash))
                logger.notice("Current release repaired; announcing it again", metadata: ["release.version": "\(manifest.version)"])
                // Sites backing off from a chunk the hub could not serve ask for it again at once.
                return ([.published(version: manifest.version)], p.admin, .releaseOffer(release))
            }
            try store.installRelease(manifest.curriculum, manifest: release.manifestBytes, signatures: release.signaturesJSON)
            try store.retryQuarantine()  // records about lessons this release adds are valid now
            planDeltas(from: current, to: release, manifest: manifest)
            current = release
            serving.installed(version: manifest.version, sizes: Self.sizes(manifest))
            // The previous release's chunks that deltas copy from stay until the next release.
            let removed = chunks.collect(keeping: Set(manifest.chunks.map(\.hash)).union(deltaBases.values.joined()))
            logger.notice(
                "Release installed at the hub; announcing to sites",
                metadata: ["release.version": "\(manifest.version)", "chunks.collected": "\(removed)"])
            return ([.published(version: manifest.version)], p.admin, .releaseOffer(release))
        }
        let hashes = p.download.nextRequests(now: now)
        return (hashes.isEmpty ? [] : [.chunkRequest(hashes)], p.admin, nil)
    }

    /// The CHUNK message for a whole verified chunk as frames (envelope, payload), encoded once.
    mutating func wholeChunkFrames(_ hash: String, data: Data) -> (envelope: Data, payload: SharedFrame) {
        if let f = frames[hash] { return f }
        let encoded = WireCodec.encode(.chunk(hash: hash, data: data), id: 0)
        let f = (envelope: encoded[0], payload: SharedFrame(encoded[1]))
        frames[hash] = f
        frameOrder.append(hash)
        frameBytes += f.payload.count
        while frameBytes > Self.frameCacheBytes, frameOrder.count > 1 {
            if let old = frames.removeValue(forKey: frameOrder.removeFirst()) { frameBytes -= old.payload.count }
        }
        return f
    }

    /// Sites holding `old` will get `new` as deltas: the manifest's (computed once, here) and
    /// each new chunk's (computed when first asked for).
    private mutating func planDeltas(from old: SignedRelease?, to new: SignedRelease, manifest: Manifest) {
        previous = nil
        deltaBases = [:]
        deltas = [:]
        frames = [:]
        frameOrder = []
        frameBytes = 0
        guard let old, let oldManifest = try? Manifest.decode(old.manifestBytes) else { return }
        deltaBases = ReleaseDelta.bases(new: manifest, old: oldManifest)
        let hash = Blake2b.hash(old.manifestBytes)
        let offer = ReleaseDelta.worthwhileDelta(new.manifestBytes, bases: [old.manifestBytes]).map {
            WireMessage.releaseOfferDelta(baseManifestHash: hash, delta: $0, signatures: new.signatures)
        }
        previous = (hash, offer)
    }

    // MARK: Serving (hub → site): HubReleaseServing decides; the disk part is carried out here

    /// Reads a current chunk, checked (BLAKE2b-256 and size), and tells the policy what was found.
    mutating func check(_ hash: String, size: Int, forSite: Bool, now: Int64) -> [HubReleaseServing.Action] {
        let outcome: HubReleaseServing.ReadOutcome
        if !chunks.has(hash) {
            outcome = .missing
        } else {
            do { outcome = .verified(try chunks.readVerified(hash, size: size)) } catch ChunkStoreError.corrupt(let why) {
                outcome = .corrupt(why)
            } catch { outcome = .failed("\(error)") }
        }
        return serving.read(hash, outcome, forSite: forSite)
    }

    /// Moves a rotted chunk file aside and, if an admin publishing now has it, asks for it again.
    mutating func quarantine(_ hash: String, why: String, now: Int64) -> [HubReleaseServing.Action] {
        let moved: HubReleaseServing.QuarantineOutcome
        do { moved = .moved(to: try chunks.quarantine(hash, now: now)) } catch { moved = .notMoved(reason: "\(error)") }
        var refetching = false
        if let size = publishing?.download.current?.manifest.chunks.first(where: { $0.hash == hash })?.size {
            publishing!.download.refetch(Manifest.ChunkRef(hash: hash, size: size))
            refetching = true
        }
        return serving.quarantined(hash, why: why, movedTo: moved, refetching: refetching)
    }

    /// Carries out the disk, log and alert actions of a check the hub made for itself (a re-publish).
    private mutating func carryOut(_ actions: [HubReleaseServing.Action]) {
        var queue = actions
        while !queue.isEmpty {
            switch queue.removeFirst() {
            case .quarantine(let hash, let why): queue += quarantine(hash, why: why, now: NodeStore.systemNow())
            case .log(let level, let message, let metadata): logger.log(level, message, metadata)
            case .alert(let alert): alerts.append(alert)
            case .send, .tryLater, .read, .refuse, .countLogged: break  // not for a site: nothing to send or count
            }
        }
    }

    /// Alerts raised by a re-publish's check since the last call, for the hub's stats.
    mutating func takeAlerts() -> [String] {
        defer { alerts = [] }
        return alerts
    }
}
