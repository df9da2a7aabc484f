import Foundation
import Logging
import Release
import Store
import Wire

/// The hub's side of curriculum releases, driven by the hub loop (same thread, same sockets):
/// accepts a release an admin publishes (fetching its chunks from the admin), installs it,
/// announces it, and serves chunks to sites within a limit of concurrent transfers.
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
    private var currentChunks: Set<String> = []
    /// The release an admin is publishing, and the admin connection to fetch its chunks from.
    private var publishing: (admin: Data, download: ReleaseDownload)?
    /// Sites holding a transfer slot → when they last asked.
    private var transfers: [Data: Int64] = [:]

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
            currentChunks = Set(m.chunks.map(\.hash))
        }
    }

    /// What to send a site that just said HELLO with `siteVersion` installed.
    func offer(forSiteAt siteVersion: UInt64) -> WireMessage? {
        guard let current, siteVersion < currentVersion else { return nil }
        return .releaseOffer(current)
    }

    // MARK: Publishing (admin → hub)

    /// An admin offers a release: refuse it, or start fetching the chunks the hub lacks.
    mutating func adminOffered(_ release: SignedRelease, from admin: Data, now: Int64) -> [WireMessage] {
        var download = ReleaseDownload(trust: trust, installedVersion: currentVersion, window: 8)
        switch download.offered(release, nowSeconds: now / 1_000) {
        case .refuse(let refusal):
            logger.error("Refused a published release", metadata: ["reason": "\(refusal)"])
            return [.refuse(code: .releaseRefused, reason: refusal.description, retryAfterSeconds: 0)]
        case .alreadyHave:
            return [.refuse(code: .releaseRefused, reason: "release version \(currentVersion) is already the hub's current release; publish a higher version", retryAfterSeconds: 0)]
        case .fetch(let manifest):
            download.begin(release, manifest: manifest, missing: chunks.missing(manifest.chunks))
            publishing = (admin, download)
            logger.info(
                "Accepting release from admin",
                metadata: ["release.version": "\(manifest.version)", "chunks.missing": "\(download.current!.fetch.remaining)"])
            return []
        }
    }

    /// A chunk from the publishing admin. Returns true when the chunk was stored.
    mutating func adminSentChunk(hash: String, data: Data, from admin: Data) throws -> Bool {
        guard publishing?.admin == admin else { return false }
        switch try publishing!.download.receive(hash: hash, bytes: data, into: chunks) {
        case .verified:
            return true
        case .mismatch(let refusal):
            logger.warning("Chunk from admin failed verification", metadata: ["reason": "\(refusal)"])
            return false
        case .unexpected:
            return false
        }
    }

    /// Requests to the admin, or — once every chunk is held — the install and its announcements.
    mutating func advancePublishing(now: Int64, store: NodeStore) throws -> (toAdmin: [WireMessage], admin: Data?, announce: WireMessage?) {
        guard var p = publishing else { return ([], nil, nil) }
        defer { if publishing != nil { publishing = p } }
        if let (release, manifest) = p.download.readyToInstall {
            try store.installRelease(manifest.curriculum, manifest: release.manifestBytes, signatures: release.signaturesJSON)
            try store.retryQuarantine()  // records about lessons this release adds are valid now
            current = release
            currentVersion = manifest.version
            currentChunks = Set(manifest.chunks.map(\.hash))
            publishing = nil
            let removed = chunks.collect(keeping: currentChunks)
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

    /// A site asks for chunks: within the transfer limit, the ones the hub holds for its release.
    mutating func siteRequested(_ hashes: [String], from routing: Data, now: Int64) -> ServeDecision {
        transfers = transfers.filter { now - $0.value < limits.transferIdleMilliseconds }
        if transfers[routing] == nil && transfers.count >= limits.maxConcurrentTransfers {
            // Spread the comebacks so deferred sites do not return in one wave.
            return .tryLater(limits.retryAfterSeconds + UInt32.random(in: 0...limits.retryAfterSeconds / 2))
        }
        transfers[routing] = now
        return .send(hashes.filter { currentChunks.contains($0) })
    }

    var activeTransfers: Int { transfers.count }
}
