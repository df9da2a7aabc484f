import Foundation
import Merge
import Sodium

/// How identifiers are derived so that every node computes the same one.
public enum Identity {
    /// The learner id of a national ID: the same person registered at two communes is one
    /// learner everywhere, so national counts count people, not registrations.
    ///
    /// - Important: this is a pseudonym, not anonymization: 10^12 national IDs can be
    ///   enumerated. Treat learner ids as personal data too; keep both out of logs and reports.
    public static func learnerID(nationalID: String) -> String {
        Blake2b.hash(Data("hocvu/learner/v1\u{0}\(nationalID)".utf8), outputLength: 16).hexString
    }

    /// The certificate id of (learner, course): issued once, whichever node issues it.
    public static func certificateID(learnerID: String, courseID: String) -> String {
        Blake2b.hash(Data("hocvu/certificate/v1\u{0}\(learnerID)\u{0}\(courseID)".utf8), outputLength: 16).hexString
    }

    /// True for 12 ASCII digits (the VNeID personal identification number's shape).
    public static func isWellFormedNationalID(_ s: String) -> Bool {
        s.utf8.count == 12 && s.utf8.allSatisfy { $0 >= 48 && $0 <= 57 }
    }
}
