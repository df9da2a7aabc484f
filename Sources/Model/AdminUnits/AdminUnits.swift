import Foundation

/// The 34 provinces and 3,321 communes (July 2025 units, official codes), compiled in.
public struct AdminUnits: Decodable, Sendable {
    public struct Commune: Decodable, Sendable {
        public let code: Int
        public let name: String
        public let type: String
    }

    public struct Province: Decodable, Sendable {
        public let code: Int
        public let name: String
        public let type: String
        public let communes: [Commune]
    }

    public let provinces: [Province]

    /// The list compiled into the binary (AdminUnitsData.swift, generated from
    /// Resources/vn-admin-units-2025.json by ops/generate-admin-units.sh): no resource bundle, so an
    /// installed hocvu needs no file beside it. Decoded once, at first use.
    public static func bundled() throws -> AdminUnits {
        try decoded.get()
    }

    private static let decoded = Result<AdminUnits, any Error> {
        try JSONDecoder().decode(AdminUnits.self, from: Data(json.utf8))
    }
}
