/// Failures of the store that are not about one record's content.
public enum StoreError: Error, Equatable, CustomStringConvertible {
    case missingResource(String)
    case wrongIdentity(databaseNode: String, keyNode: String)
    case notInitialized
    case clock(String)

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
        }
    }
}
