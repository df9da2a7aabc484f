internal import CSodium
public import Foundation

/// Errors from key handling; closed set.
public enum SodiumError: Error, Equatable, CustomStringConvertible {
    case invalidKeyLength(expected: Int, actual: Int)
    case keyGenerationFailed

    public var description: String {
        switch self {
        case .invalidKeyLength(let expected, let actual):
            "key has \(actual) bytes, expected \(expected)"
        case .keyGenerationFailed:
            "libsodium could not generate a key pair"
        }
    }
}

/// An Ed25519 identity key pair (`crypto_sign`): signs batches and transport-key statements.
public struct SigningKeyPair: Sendable {
    public static let publicKeyLength = Int(crypto_sign_PUBLICKEYBYTES)
    public static let secretKeyLength = Int(crypto_sign_SECRETKEYBYTES)
    public static let signatureLength = Int(crypto_sign_BYTES)

    public let publicKey: Data
    /// 64 bytes: libsodium's seed || public key form.
    public let secretKey: Data

    /// Generates a fresh key pair.
    public static func generate() -> SigningKeyPair {
        Sodium.ensureInitialized()
        var pk = [UInt8](repeating: 0, count: publicKeyLength)
        var sk = [UInt8](repeating: 0, count: secretKeyLength)
        crypto_sign_keypair(&pk, &sk)
        return SigningKeyPair(publicKey: Data(pk), secretKey: Data(sk))
    }

    /// Rebuilds a key pair from its 64-byte secret key.
    public init(secretKey: Data) throws {
        guard secretKey.count == Self.secretKeyLength else {
            throw SodiumError.invalidKeyLength(expected: Self.secretKeyLength, actual: secretKey.count)
        }
        Sodium.ensureInitialized()
        var pk = [UInt8](repeating: 0, count: Self.publicKeyLength)
        let sk = [UInt8](secretKey)
        crypto_sign_ed25519_sk_to_pk(&pk, sk)
        self.init(publicKey: Data(pk), secretKey: secretKey)
    }

    private init(publicKey: Data, secretKey: Data) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// Detached signature over `message`.
    public func sign(_ message: some DataProtocol) -> Data {
        let m = [UInt8](message)
        let sk = [UInt8](secretKey)
        var sig = [UInt8](repeating: 0, count: Self.signatureLength)
        crypto_sign_detached(&sig, nil, m, UInt64(m.count), sk)
        return Data(sig)
    }
}

/// Verification of detached Ed25519 signatures.
public enum Ed25519 {
    /// True when `signature` is a valid signature of `message` by `publicKey`.
    public static func verify(signature: Data, message: some DataProtocol, publicKey: Data) -> Bool {
        guard signature.count == SigningKeyPair.signatureLength,
              publicKey.count == SigningKeyPair.publicKeyLength else { return false }
        Sodium.ensureInitialized()
        let m = [UInt8](message)
        return crypto_sign_verify_detached([UInt8](signature), m, UInt64(m.count), [UInt8](publicKey)) == 0
    }
}

/// An X25519 key pair (`crypto_box`): a node's CURVE transport key for ZeroMQ.
///
/// Kept apart from the Ed25519 identity key, as libsodium advises, so transport keys can rotate
/// without re-enrolling the node's identity.
public struct BoxKeyPair: Sendable {
    public static let keyLength = Int(crypto_box_PUBLICKEYBYTES)

    public let publicKey: Data
    public let secretKey: Data

    public static func generate() -> BoxKeyPair {
        Sodium.ensureInitialized()
        var pk = [UInt8](repeating: 0, count: keyLength)
        var sk = [UInt8](repeating: 0, count: keyLength)
        crypto_box_keypair(&pk, &sk)
        return BoxKeyPair(publicKey: Data(pk), secretKey: Data(sk))
    }

    /// Rebuilds the pair from its 32-byte secret key.
    public init(secretKey: Data) throws {
        guard secretKey.count == Self.keyLength else {
            throw SodiumError.invalidKeyLength(expected: Self.keyLength, actual: secretKey.count)
        }
        Sodium.ensureInitialized()
        var pk = [UInt8](repeating: 0, count: Self.keyLength)
        crypto_scalarmult_base(&pk, [UInt8](secretKey))
        self.init(publicKey: Data(pk), secretKey: secretKey)
    }

    private init(publicKey: Data, secretKey: Data) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }
}
