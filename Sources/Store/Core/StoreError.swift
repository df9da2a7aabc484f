/// The store's failures that are not about one record's content (those are `RecordValidationError`,
/// set aside in quarantine) nor about opening the file (``StoreOpenError``, which names the path):
/// each message says what is wrong and what the operator can do.
public enum StoreError: Error, Equatable, CustomStringConvertible {
    case missingResource(String)
    case wrongIdentity(databaseNode: String, keyNode: String)
    case notInitialized
    case clock(String)
    // Enrollment (hub): why a site could not be enrolled or revoked.
    case unknownCommune(Int)
    case badKey(String)
    case alreadyEnrolled(Int)
    case keyInUse
    case notEnrolled(Int)

    public var description: String {
        switch self {
        case .missingResource(let name):
            "bundled resource \(name) is missing from the installation; reinstall hocvu"
        case .wrongIdentity(let db, let key):
            "database belongs to node \(db) but the identity key is node \(key); "
                + "use the key this database was created with, or start a new database"
        case .notInitialized:
            "database has no node row; it was not created by hocvu"
        case .clock(let why):
            why
        case .unknownCommune(let c): "commune code \(c) is not one of the 3,321 official communes"
        case .badKey(let which): "\(which) must be 32 bytes (64 hex characters) as printed by `hocvu keygen`"
        case .alreadyEnrolled(let c): "commune \(c) is already enrolled; revoke it first to enroll new keys"
        case .keyInUse: "one of these keys is already enrolled (or was revoked) for another commune"
        case .notEnrolled(let c): "commune \(c) is not enrolled"
        }
    }
}
