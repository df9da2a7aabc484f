/// The learner's role, which decides the courses targeted at them ("đúng người, đúng nhu cầu").
public enum Role: String, CaseIterable, Comparable, Sendable, Codable {
    case nationalAssemblyDeputy = "na_deputy"
    case provincialCouncilDelegate = "provincial_council_delegate"
    case communeCouncilDelegate = "commune_council_delegate"
    case civilServant = "civil_servant"
    case other = "other"

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}
