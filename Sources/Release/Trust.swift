public import Foundation
import Merge
public import Sodium

/// Why a release was not applied. Each names what is wrong and what to do; nothing of a refused
/// release is installed.
public enum ReleaseRefusal: Error, Equatable, CustomStringConvertible, Sendable {
    case malformedManifest(String)
    case noSignatures
    case badSignature(key: String)
    case unknownKey(key: String)
    case belowThreshold(valid: Int, required: Int)
    case rollback(offered: UInt64, current: UInt64)
    case expired(version: UInt64, at: Int64)
    case inconsistent(String)
    case chunkHashMismatch(expected: String, actual: String)
    case chunkSizeMismatch(hash: String, expected: Int, actual: Int)
    /// One chunk failed verification `times` times from the same source: that source is bad for it.
    case chunkFailedVerification(hash: String, times: Int, source: String)

    public var description: String {
        switch self {
        case .malformedManifest(let why): "the manifest is not valid release JSON (\(why)); rebuild it with `hocvu admin release build`"
        case .noSignatures: "the release carries no signature; each admin signs with `hocvu admin release sign`"
        case .badSignature(let key): "the signature by admin key \(key.prefix(16))… does not match the manifest: the manifest was altered after signing, or the signature file is damaged"
        case .unknownKey(let key): "the release is signed by key \(key.prefix(16))…, which the trust file does not list; only pinned admin keys count"
        case .belowThreshold(let valid, let required): "the release has \(valid) valid admin signature(s) but the trust file requires \(required); collect more signatures"
        case .rollback(let offered, let current): "release version \(offered) is not newer than the installed version \(current); releases only move forward (rollback refused)"
        case .expired(let version, let at): "release \(version) expired at \(Date(timeIntervalSince1970: Double(at))); a frozen or stale release is refused — publish a fresh one"
        case .inconsistent(let why): "the manifest disagrees with itself: \(why)"
        case .chunkHashMismatch(let expected, let actual): "chunk \(expected) hashes to \(actual.prefix(16))…; it was dropped and will be asked for again after a backoff"
        case .chunkSizeMismatch(let hash, let expected, let actual): "chunk \(hash) is \(actual) bytes where the manifest says \(expected); it was dropped and will be asked for again after a backoff"
        case .chunkFailedVerification(let hash, let times, let source): "chunk \(hash) failed verification \(times) times from \(source)"
        }
    }
}

/// One admin as the trust file lists them.
public struct AdminKey: Codable, Hashable, Sendable {
    public var name: String
    /// Ed25519 public key (hex) that signs releases.
    public var signingKey: String
    /// CURVE public key (hex) the hub admits for `hocvu admin release publish`.
    public var transportKey: String
    enum CodingKeys: String, CodingKey { case name, signingKey = "signing_key", transportKey = "transport_key" }
    public init(name: String, signingKey: String, transportKey: String) {
        self.name = name; self.signingKey = signingKey; self.transportKey = transportKey
    }
}

/// The pinned admin keys and how many of them must sign (k of n), as in TUF's root role.
/// The hub and every site hold the same trust file.
public struct TrustPolicy: Codable, Hashable, Sendable {
    public var threshold: Int
    public var admins: [AdminKey]

    public init(threshold: Int, admins: [AdminKey]) throws(TrustFileError) {
        self.threshold = threshold
        self.admins = admins
        try check()
    }

    public static func load(_ data: Data, source: String) throws(TrustFileError) -> TrustPolicy {
        let p: TrustPolicy
        do { p = try JSONDecoder().decode(TrustPolicy.self, from: data) } catch {
            throw TrustFileError(source: source, problem: "not a trust file (\(error)); generate one with `hocvu admin trust`")
        }
        try p.check(source: source)
        return p
    }

    public func encoded() -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return (try? enc.encode(self)) ?? Data()
    }

    func check(source: String = "trust policy") throws(TrustFileError) {
        func fail(_ p: String) -> TrustFileError { TrustFileError(source: source, problem: p) }
        guard !admins.isEmpty else { throw fail("lists no admin keys") }
        guard (1...admins.count).contains(threshold) else {
            throw fail("threshold \(threshold) must be between 1 and the number of admins (\(admins.count))")
        }
        for a in admins {
            guard Data(hex: a.signingKey)?.count == 32 else { throw fail("admin \"\(a.name)\": signing_key is not 64 hex characters") }
            guard Data(hex: a.transportKey)?.count == 32 else { throw fail("admin \"\(a.name)\": transport_key is not 64 hex characters") }
        }
        guard Set(admins.map(\.signingKey)).count == admins.count else { throw fail("an admin signing key is listed twice") }
    }

    public var transportKeys: Set<Data> { Set(admins.compactMap { Data(hex: $0.transportKey) }) }
}

public struct TrustFileError: Error, CustomStringConvertible, Equatable {
    public var source: String
    public var problem: String
    public var description: String { "\(source): \(problem)" }
}

/// One admin's detached signature over a manifest.
public struct ReleaseSignature: Codable, Hashable, Sendable {
    /// The signer's Ed25519 public key, hex.
    public var key: String
    public var signature: String
    public init(key: String, signature: String) { self.key = key; self.signature = signature }

    /// Domain separation: a release signature can never be confused with a batch signature.
    static let domain = Data("hocvu release manifest v1\n".utf8)

    public static func sign(_ manifestBytes: Data, with key: SigningKeyPair) -> ReleaseSignature {
        ReleaseSignature(key: key.publicKey.hexString, signature: key.sign(domain + manifestBytes).hexString)
    }

    func verifies(_ manifestBytes: Data) -> Bool {
        guard let k = Data(hex: key), let s = Data(hex: signature) else { return false }
        return Ed25519.verify(signature: s, message: Self.domain + manifestBytes, publicKey: k)
    }
}

/// A manifest's exact bytes with the signatures collected for it.
public struct SignedRelease: Hashable, Sendable {
    public var manifestBytes: Data
    public var signatures: [ReleaseSignature]
    public init(manifestBytes: Data, signatures: [ReleaseSignature]) {
        self.manifestBytes = manifestBytes; self.signatures = signatures
    }

    public var signaturesJSON: Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return (try? enc.encode(signatures)) ?? Data("[]".utf8)
    }
}

/// The acceptance rules every node applies before it fetches or installs anything (TUF-style):
/// signatures first, then self-consistency, then the version only rising, then expiry.
public enum ReleaseVerifier {
    /// - Parameters:
    ///   - current: the installed release version (0 when none).
    ///   - now: seconds since 1970.
    /// - Returns: the decoded manifest, safe to act on.
    public static func verify(
        _ release: SignedRelease, trust: TrustPolicy, current: UInt64, now: Int64
    ) throws(ReleaseRefusal) -> Manifest {
        try checkSignatures(release, trust: trust)
        let manifest = try Manifest.decode(release.manifestBytes)
        try manifest.checkConsistency()
        guard manifest.version > current else { throw .rollback(offered: manifest.version, current: current) }
        guard now < manifest.expires else { throw .expired(version: manifest.version, at: manifest.expires) }
        return manifest
    }

    static func checkSignatures(_ release: SignedRelease, trust: TrustPolicy) throws(ReleaseRefusal) {
        guard !release.signatures.isEmpty else { throw .noSignatures }
        let pinned = Set(trust.admins.map { $0.signingKey.lowercased() })
        var valid = Set<String>()
        var unknown: String?
        for s in release.signatures {
            let key = s.key.lowercased()
            guard pinned.contains(key) else {
                unknown = unknown ?? key
                continue
            }
            // A pinned admin's signature that fails means these are not the bytes that admin
            // signed: refuse outright rather than count around it.
            guard s.verifies(release.manifestBytes) else { throw .badSignature(key: key) }
            valid.insert(key)
        }
        if valid.count >= trust.threshold { return }
        if valid.isEmpty, let unknown { throw .unknownKey(key: unknown) }
        throw .belowThreshold(valid: valid.count, required: trust.threshold)
    }
}
