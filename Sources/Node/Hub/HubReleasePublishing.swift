public import Foundation
public import Logging
public import Release
public import Wire

/// The hub's rules for a release an admin publishes, as pure verdicts: ``HubReleases`` holds the
/// download and the chunk files and carries them out (tested in HubReleaseServingTests). Whether a
/// release is acceptable at all (signatures k of n, rollback, expiry) is ``ReleaseDownload``'s.
public enum HubReleasePublishing {
    public enum OfferVerdict: Equatable, Sendable {
        /// Fetch the chunks the hub lacks from the admin, then install and announce.
        case fetch(Manifest)
        /// Refuse the publication: send this to the admin, and log it if `logged`.
        case refuse(WireMessage, logged: ReleaseRefusal?)
    }

    /// What to do with an admin's offer, given the download's own judgement.
    public static func offer(_ decision: ReleaseDownload.Decision, currentVersion: UInt64) -> OfferVerdict {
        switch decision {
        case .refuse(let refusal):
            .refuse(.refuse(code: .releaseRefused, reason: refusal.description, retryAfterSeconds: 0), logged: refusal)
        case .alreadyHave:
            // Not an error worth a log line: the admin ran publish twice.
            .refuse(
                .refuse(
                    code: .releaseRefused,
                    reason: "release version \(currentVersion) is already the hub's current release; publish a higher version",
                    retryAfterSeconds: 0),
                logged: nil)
        case .fetch(let manifest):
            .fetch(manifest)
        }
    }

    public enum ChunkVerdict: Equatable, Sendable {
        /// Ask for it again after the backoff (log this line first, if any: once per chunk).
        case askAgain(log: String?)
        /// The same chunk failed verification ``ChunkFetch/badSourceThreshold`` times: abandon the
        /// publication and send this to the admin, rather than retrying forever.
        case refusePublication(WireMessage, reason: String)
    }

    /// A chunk from the publishing admin failed verification for the `failures`-th time.
    public static func chunkFailed(hash: String, refusal: ReleaseRefusal, failures: Int, logged: inout LogOnce) -> ChunkVerdict {
        guard failures >= ChunkFetch.badSourceThreshold else {
            return .askAgain(log: logged.first("admin-mismatch:\(hash)") ? "\(refusal)" : nil)
        }
        let reason =
            "\(ReleaseRefusal.chunkFailedVerification(hash: hash, times: failures, source: "the admin")) (its bytes do not "
            + "match its name or the manifest's size); check the release with `hocvu admin release verify` and rebuild it "
            + "or copy its chunks/ directory again"
        return .refusePublication(.refuse(code: .releaseRefused, reason: reason, retryAfterSeconds: 0), reason: reason)
    }
}
