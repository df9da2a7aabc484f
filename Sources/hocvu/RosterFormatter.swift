import Merge
import Store

/// Renders a roster for the operator's terminal: names and stages (personal data, shown only to
/// the operator who asked; never logged).
enum RosterFormatter {
    /// `members` as shown (perhaps filtered); `of` the whole roster, for the closing count.
    static func render(_ members: [RosterMember], of roster: [RosterMember]? = nil) -> String {
        let roster = roster ?? members
        guard !roster.isEmpty else { return "No officials on this roster." }
        var out = [ReportFormatter.pad("FULL NAME", 32) + ReportFormatter.pad("ROLE", 28) + ReportFormatter.pad("UNIT", 28) + "STAGE"]
        for m in members {
            out.append(
                ReportFormatter.pad(m.fullName, 32) + ReportFormatter.pad(m.role.rawValue, 28) + ReportFormatter.pad(m.unit, 28)
                    + stage(m))
        }
        let counts = Dictionary(grouping: roster, by: \.stage).mapValues(\.count)
        out.append("")
        out.append(
            "\(roster.count) on the roster: \(counts[.certified] ?? 0) certified, \(counts[.enrolled] ?? 0) enrolled, "
                + "\(counts[.notStarted] ?? 0) not started")
        return out.joined(separator: "\n")
    }

    static func stage(_ m: RosterMember) -> String {
        switch m.stage {
        case .certified: "certified"
        case .enrolled: "enrolled"
        case .notStarted: m.registered ? "not started (registered)" : "not started"
        }
    }
}
