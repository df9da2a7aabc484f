import Foundation
import Logging
import Merge
import Model
import Release
import Sodium
import Store
import TestSupport
import Transport
import SwiftProtobuf
@testable import Wire  // the generated protobuf structs are internal: they carry values WireMessage never would

#if canImport(Glibc)
import Glibc
#endif

// Support for SessionFuzzTests: settings from the environment, a crash-proof journal of what was
// sent, boundary values, raw message builders and a fake hub.

/// Seed and size of a fuzzing run. `HOCVU_FUZZ_SEED` (decimal or 0x-hex) and `HOCVU_FUZZ_ROUNDS`
/// override the defaults; `HOCVU_FUZZ_FIRST_ROUND` replays from one round (each round draws from
/// its own generator, seeded by seed and round, so `HOCVU_FUZZ_FIRST_ROUND=N HOCVU_FUZZ_ROUNDS=1`
/// replays round N's messages against a fresh hub). `HOCVU_FUZZ_AVOID` lists input families to
/// leave out (comma-separated, see ``FuzzSettings/avoid(_:)``): for triage, to get past a crash
/// already known.
struct FuzzSettings: CustomStringConvertible {
    static let defaultSeed: UInt64 = 0x6863_7675_2025_0009  // "hcvu" 2025, issue 9

    let seed: UInt64
    let rounds: Int
    let firstRound: Int
    let avoided: Set<String>

    init(defaultRounds: Int, environment: [String: String] = ProcessInfo.processInfo.environment) {
        func number(_ s: String?) -> UInt64? {
            guard let s = s?.trimmingCharacters(in: .whitespaces), !s.isEmpty else { return nil }
            if s.lowercased().hasPrefix("0x") { return UInt64(s.dropFirst(2), radix: 16) }
            return UInt64(s)
        }
        seed = number(environment["HOCVU_FUZZ_SEED"]) ?? Self.defaultSeed
        rounds = number(environment["HOCVU_FUZZ_ROUNDS"]).map { Int(clamping: $0) } ?? defaultRounds
        firstRound = number(environment["HOCVU_FUZZ_FIRST_ROUND"]).map { Int(clamping: $0) } ?? 0
        avoided = Set((environment["HOCVU_FUZZ_AVOID"] ?? "").split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces)
        })
    }

    /// Families: `seq63` (sequence numbers, cursors, version-vector entries ≥ 2^63), `length63`
    /// (enrollment causal lengths ≥ 2^63 in signed changes), `range`
    /// (batch ranges over 20,000 changes), `clock` (WELCOME clocks more than 24 h from now, and
    /// mutated WELCOMEs), `release-version` (admin-signed release versions over 2^53 − 1), `fatal-refuse` (REFUSE
    /// codes that stop a site). And `offset`: do not check the ±24 h clock-offset property.
    func avoid(_ family: String) -> Bool { avoided.contains(family) }

    var roundRange: Range<Int> { firstRound..<(firstRound + rounds) }

    /// A generator for one round: independent of every other round.
    func generator(round: Int, salt: UInt64) -> SeededGenerator {
        var g = SeededGenerator(seed: seed ^ salt)
        for _ in 0..<(round % 7) { _ = g.next() }
        return SeededGenerator(seed: g.next() &+ UInt64(round) &* 0x9E37_79B9_7F4A_7C15)
    }

    func replay(test: String, round: Int) -> String {
        "HOCVU_FUZZ_SEED=0x\(String(seed, radix: 16)) HOCVU_FUZZ_FIRST_ROUND=\(round) HOCVU_FUZZ_ROUNDS=1"
            + (avoided.isEmpty ? "" : " HOCVU_FUZZ_AVOID=\(avoided.sorted().joined(separator: ","))")
            + " swift test --filter \(test)"
    }

    var description: String {
        "seed=0x\(String(seed, radix: 16)) rounds=\(firstRound)..<\(firstRound + rounds)"
            + (avoided.isEmpty ? "" : " avoid=\(avoided.sorted().joined(separator: ","))")
    }
}

// MARK: - Journal

/// What the fuzzer sent and received in the current round, in a file written before each send.
///
/// A trap in the hub or site thread kills the whole test process, so nothing after it runs: a
/// signal handler (SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGFPE, SIGABRT) prints this round's journal —
/// seed, round, replay command and every message — to stderr, then lets the previous handler
/// (Swift's backtracer or the default) finish the crash.
enum FuzzJournal {
    nonisolated(unsafe) static var fd: Int32 = -1
    nonisolated(unsafe) static var active: Int32 = 0
    nonisolated(unsafe) static var previous = Array(repeating: sigaction(), count: 32)
    nonisolated(unsafe) static var installed = false
    static let signals: [Int32] = [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGFPE, SIGABRT]
    static let path = FileManager.default.temporaryDirectory.path + "/hocvu-session-fuzz-\(getpid()).log"

    static func open() {
        if fd < 0 {
            fd = Glibc.open(path, O_RDWR | O_CREAT | O_TRUNC, 0o644)
            // Kept after a crash (no atexit then), for a post-mortem; removed on a normal exit.
            atexit { unlink(FuzzJournal.path) }
        }
        guard !installed else { return }
        installed = true
        for s in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { sig in FuzzJournal.crashed(sig) }
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            sigaction(s, &action, &previous[Int(s)])
        }
    }

    /// Starts a round: the journal holds only this round (plus its header).
    /// The journal of the round before this one: a failure can be set up by the round before.
    nonisolated(unsafe) static var previousRound = ""

    static func begin(_ header: String) {
        open()
        previousRound = active != 0 || fd < 0 ? previousRound : contents()
        ftruncate(fd, 0)
        lseek(fd, 0, SEEK_SET)
        active = 1
        note(header)
    }

    static func end() { active = 0 }

    static func note(_ line: String) {
        guard fd >= 0 else { return }
        var bytes = Array((line + "\n").utf8)
        let n = bytes.count
        _ = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress, n) }
    }

    static func contents() -> String {
        (try? String(contentsOfFile: path, encoding: .utf8)) ?? "(journal unreadable: \(path))"
    }

    /// Runs in the crashing thread: only async-signal-safe calls (pread, write, sigaction).
    static func crashed(_ sig: Int32) {
        if active != 0, fd >= 0 {
            active = 0
            let banner = "\n=== hocvu session fuzzer: the process is crashing (signal \(sig)); this round's journal follows ===\n"
            var b = Array(banner.utf8)
            let bn = b.count
            _ = b.withUnsafeMutableBytes { write(2, $0.baseAddress, bn) }
            var buffer = [UInt8](repeating: 0, count: 4096)
            var offset: off_t = 0
            while true {
                let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 4096, offset) }
                if n <= 0 { break }
                _ = buffer.withUnsafeMutableBytes { write(2, $0.baseAddress, n) }
                offset += off_t(n)
            }
            let tail = Array("=== end of journal ===\n".utf8)
            _ = tail.withUnsafeBytes { write(2, $0.baseAddress, tail.count) }
        }
        // Back to the previous handler; returning re-runs the trapping instruction, which traps again.
        sigaction(sig, &previous[Int(sig)], nil)
        if sig == SIGABRT { raise(sig) }
    }
}

/// Logs of the engine under test, warning and above, into the journal: a hub or site loop that
/// stops on a thrown error says why ("Hub loop stopped", error=…) next to the message that did it.
struct JournalLogHandler: LogHandler {
    let name: String
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .warning

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let meta = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        FuzzJournal.note("   [\(name) \(event.level)] \(event.message) \(meta)")
    }

    static func logger(_ name: String) -> Logger {
        var l = Logger(label: "fuzz.\(name)") { _ in JournalLogHandler(name: name) }
        l.logLevel = .warning
        return l
    }
}

// MARK: - Random values

/// Boundary integers: where range checks and conversions break.
enum Boundary {
    static let u64: [UInt64] = [
        0, 1, 2, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 1 << 32, (1 << 53) - 1, 1 << 53, (1 << 53) + 1,
        (1 << 63) - 1, 1 << 63, (1 << 63) + 1, UInt64.max - 1, UInt64.max,
    ]
    static let i64: [Int64] = [
        Int64.min, Int64.min + 1, -(1 << 53), -86_400_001, -1, 0, 1, 0x7FFF_FFFF, 1 << 32,
        1_735_689_599_999, 1_735_689_600_000, (1 << 48) - 1, 1 << 48, (1 << 53) - 1, 1 << 53, Int64.max - 1, Int64.max,
    ]
    static let u32: [UInt32] = [0, 1, 2, 4, 8, 63, 64, 65, 0x7FFF_FFFF, 0x8000_0000, UInt32.max - 1, UInt32.max]

    /// Shown as powers of two where they are one, so a journal line reads as the input it was.
    static func show(_ v: UInt64) -> String {
        switch v {
        case UInt64.max: "2^64-1"
        case UInt64.max - 1: "2^64-2"
        case 1 << 63: "2^63"
        case (1 << 63) - 1: "2^63-1"
        case (1 << 63) + 1: "2^63+1"
        case 1 << 53: "2^53"
        case (1 << 53) - 1: "2^53-1"
        case (1 << 53) + 1: "2^53+1"
        case 1 << 32: "2^32"
        case 0xFFFF_FFFF: "2^32-1"
        case 0x8000_0000: "2^31"
        case 0x7FFF_FFFF: "2^31-1"
        default: "\(v)"
        }
    }

    static func show(_ v: Int64) -> String {
        switch v {
        case Int64.max: "Int64.max"
        case Int64.min: "Int64.min"
        case Int64.max - 1: "Int64.max-1"
        case Int64.min + 1: "Int64.min+1"
        default: v >= 0 ? show(UInt64(v)) : "\(v)"
        }
    }
}

/// Random choices for one round, all from one seeded generator.
struct FuzzRandom {
    var g: SeededGenerator

    mutating func int(_ r: Range<Int>) -> Int { Int.random(in: r, using: &g) }
    mutating func int(_ r: ClosedRange<Int>) -> Int { Int.random(in: r, using: &g) }
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &g) < p }
    mutating func bool() -> Bool { Bool.random(using: &g) }
    mutating func pick<T>(_ xs: [T]) -> T { xs[int(0..<xs.count)] }
    mutating func bytes(_ n: Int) -> Data { Data((0..<n).map { _ in UInt8.random(in: 0...255, using: &g) }) }
    mutating func bytes(upTo n: Int) -> Data { bytes(int(0...n)) }

    /// A boundary value (mostly), a value near `near`, or any 64 bits.
    mutating func u64(near: UInt64? = nil, avoidAbove63: Bool = false) -> UInt64 {
        var v: UInt64
        switch int(0..<10) {
        case 0..<6: v = pick(Boundary.u64)
        case 6..<8 where near != nil: v = near! &+ UInt64(bitPattern: Int64(int(-2...2)))
        default: v = g.next()
        }
        if avoidAbove63 && v >= 1 << 63 { v = (1 << 63) - 1 - UInt64(int(0...1)) }
        return v
    }

    mutating func i64(near: Int64? = nil) -> Int64 {
        switch int(0..<10) {
        case 0..<6: return pick(Boundary.i64)
        case 6..<8 where near != nil: return near! &+ Int64(int(-3...3)) &* pick([1, 1_000, 86_400_000, 86_400_001])
        default: return Int64(bitPattern: g.next())
        }
    }

    mutating func u32(near: UInt32? = nil) -> UInt32 {
        switch int(0..<10) {
        case 0..<7: return pick(Boundary.u32)
        case 7..<9 where near != nil: return near! &+ UInt32(bitPattern: Int32(int(-1...1)))
        default: return UInt32(truncatingIfNeeded: g.next())
        }
    }

    /// Flips, inserts, deletes or truncates a few bytes.
    mutating func mutate(_ data: Data) -> Data {
        var b = [UInt8](data)
        for _ in 0..<int(1...4) {
            switch int(0..<5) {
            case 0 where !b.isEmpty: b[int(0..<b.count)] ^= UInt8(1 << int(0..<8))
            case 1 where !b.isEmpty: b[int(0..<b.count)] = UInt8(truncatingIfNeeded: g.next())
            case 2: b.insert(UInt8(truncatingIfNeeded: g.next()), at: int(0...b.count))
            case 3 where !b.isEmpty: b.remove(at: int(0..<b.count))
            case 4 where !b.isEmpty: b = Array(b.prefix(int(0..<b.count)))
            default: b.append(0xFF)
            }
        }
        return Data(b)
    }
}

// MARK: - Messages

/// One message as sent: its frames and a line that says what it is.
struct FuzzMessage {
    var frames: [Data]
    var label: String

    /// The label and, when small, the exact bytes (hex), so a crash names its input.
    var journalLine: String {
        let size = frames.reduce(0) { $0 + $1.count }
        let hex = size <= 400 ? " frames=[" + frames.map(\.hexString).joined(separator: ", ") + "]" : " (\(size) bytes)"
        return label + hex
    }
}

/// A protobuf writer for bytes the generated code will not produce (any varint in any field).
struct ProtoWriter {
    var bytes = [UInt8]()
    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }
    mutating func field(_ n: UInt64, varint v: UInt64) { varint(n << 3); varint(v) }
    mutating func field(_ n: UInt64, bytes b: Data) { varint(n << 3 | 2); varint(UInt64(b.count)); bytes += b }
    var data: Data { Data(bytes) }
}

/// Builders over the generated structs, with every field the caller's choice.
enum Raw {
    typealias Kind = Hocvu_Wire_V1_Envelope.Kind

    static func envelope(_ kind: Kind, id: UInt64, major: UInt32 = 1, minor: UInt32 = 2) -> Data {
        var e = Hocvu_Wire_V1_Envelope()
        e.major = major
        e.minor = minor
        e.kind = kind
        e.messageID = id
        return (try? e.serializedData()) ?? Data()
    }

    static func message(_ kind: Kind, id: UInt64, _ payload: Data, label: String) -> FuzzMessage {
        FuzzMessage(frames: [envelope(kind, id: id), payload], label: "\(kindName(kind)) id=\(Boundary.show(id)) \(label)")
    }

    /// What a (possibly mutated) payload decodes to, in protobuf text format: the values the peer saw.
    static func decodedText(_ kind: Kind, _ payload: Data) -> String {
        func text<M: SwiftProtobuf.Message>(_ type: M.Type) -> String {
            guard let m = try? M(serializedBytes: payload) else { return "(does not parse as \(M.protoMessageName))" }
            let t = m.textFormatString().replacingOccurrences(of: "\n", with: " ")
            return "decodes as {\(t.count > 400 ? t.prefix(400) + "…" : t)}"
        }
        switch kind {
        case .hello: return text(Hocvu_Wire_V1_Hello.self)
        case .welcome: return text(Hocvu_Wire_V1_Welcome.self)
        case .batches: return text(Hocvu_Wire_V1_Batches.self)
        case .ack: return text(Hocvu_Wire_V1_Ack.self)
        default: return ""
        }
    }

    static func kindName(_ k: Kind) -> String {
        switch k {
        case .unspecified: "KIND_UNSPECIFIED"
        case .hello: "HELLO"
        case .welcome: "WELCOME"
        case .batches: "BATCHES"
        case .ack: "ACK"
        case .refuse: "REFUSE"
        case .releaseOffer: "RELEASE_OFFER"
        case .chunkRequest: "CHUNK_REQUEST"
        case .chunk: "CHUNK"
        case .tryLater: "TRY_LATER"
        case .published: "PUBLISHED"
        case .homeFeed: "HOME_FEED"
        case .UNRECOGNIZED(let n): "KIND_\(n)"
        }
    }

    static func serialize(_ m: some SwiftProtobuf.Message) -> Data { (try? m.serializedData()) ?? Data() }

    static func originSeq(node: Data, epoch: UInt64, seq: UInt64) -> Hocvu_Wire_V1_OriginSeq {
        var e = Hocvu_Wire_V1_OriginSeq()
        e.node = node
        e.epoch = epoch
        e.seq = seq
        return e
    }

    static func show(_ entries: [Hocvu_Wire_V1_OriginSeq], names: [Data: String]) -> String {
        "[" + entries.map { "\(names[$0.node] ?? "node(\($0.node.count)B)")/\(Boundary.show($0.epoch)):\(Boundary.show($0.seq))" }
            .joined(separator: " ") + "]"
    }

}

// MARK: - Changes with hostile values

/// Changes a site could sign: some valid, many with boundary values in every field.
enum HostileChanges {
    static let lessons = ["ksn-101-l1", "ksn-101-l2", "attt-101-l1", "no-such-lesson", ""]
    static let quizzes = [("ksn-101-quiz", 5, 10), ("attt-101-quiz", 4, 8), ("no-such-quiz", 1, 1)]
    static let courses = ["ksn-101", "attt-101", "ai-qh", "no-such-course"]

    static func nationalID(_ n: Int) -> String { String(format: "0073%08d", n % 100_000_000) }

    /// A short account of a change: its kind and the values a fuzzer varies.
    static func show(_ c: Change) -> String {
        let hlc = "hlc=\(Boundary.show(c.hlc.rawValue))"
        switch c.record {
        case .learner(let l):
            return "learner(\(l.nationalID) home=\(l.homeCommune.map { "\($0)" } ?? "-") name=\(l.fullName?.count ?? 0)ch \(hlc))"
        case .enrollment(let e): return "enrollment(\(e.courseID) length=\(Boundary.show(e.length)) \(hlc))"
        case .progress(let p):
            return "progress(\(p.lessonID) percent=\(p.percent) completed=\(p.completedAt.map { Boundary.show($0) } ?? "-") \(hlc))"
        case .attempt(let a):
            return "attempt(\(a.quizID) score=\(a.score)/\(a.maxScore) answers=\(a.answers.count) "
                + "started=\(Boundary.show(a.startedAt)) finished=\(Boundary.show(a.finishedAt)) \(hlc))"
        case .certificate(let x):
            return "certificate(\(x.courseID) issued=\(Boundary.show(x.issuedAt)) revoked=\(x.revokedAt.map { Boundary.show($0) } ?? "-") \(hlc))"
        case .roster(let x):
            return "roster(commune=\(x.entry.commune) active=\(x.entry.active) \(hlc))"
        }
    }

    /// One change about learner number `n` (of the hostile commune's own number space).
    static func change(_ r: inout FuzzRandom, learner n: Int, commune: Int, now: Int64, settings: FuzzSettings) -> Change {
        let national = nationalID(n)
        let learner = r.chance(0.9) ? Identity.learnerID(nationalID: national) : r.bytes(16).hexString
        let hlc: HLCTimestamp = switch r.int(0..<4) {
        case 0, 1: HLCTimestamp(milliseconds: UInt64(max(0, now)), counter: UInt16(r.int(0...3)))
        case 2: HLCTimestamp(rawValue: r.u64())
        default: HLCTimestamp(milliseconds: UInt64(truncatingIfNeeded: r.i64(near: now)), counter: UInt16.max)
        }
        let time = { (r: inout FuzzRandom) -> Int64 in r.chance(0.5) ? now - Int64(r.int(0...60_000)) : r.i64(near: now) }
        let record: RecordChange
        switch r.int(0..<6) {
        case 5:
            // Only the hub writes rosters: a site's roster entry must be set aside, whatever it says.
            record = .roster(RosterChange(
                learnerID: learner, nationalID: national,
                entry: RosterEntry(fullName: "Cán bộ \(n)", role: r.pick(Role.allCases), unit: "UBND", commune: commune,
                                   active: r.chance(0.8))))
        case 0:
            record = .learner(LearnerChange(
                learnerID: learner, nationalID: r.chance(0.9) ? national : "12345",
                fullName: r.chance(0.8) ? "Học viên \(n)" : String(repeating: "x", count: r.pick([0, 201, 1_000])),
                role: r.chance(0.7) ? .civilServant : r.pick(Role.allCases), unit: r.chance(0.8) ? "UBND" : "\u{7}",
                homeCommune: r.chance(0.8) ? commune : Int(truncatingIfNeeded: r.pick([0, 1, -1, 0x7FFF_FFFF]))))
        case 1:
            record = .enrollment(EnrollmentRecord(
                learnerID: learner, courseID: r.pick(courses),
                length: r.chance(0.7) ? UInt64(r.int(0...4)) : r.u64(avoidAbove63: settings.avoid("length63"))))
        case 2:
            let percent = r.chance(0.7) ? r.pick([0, 50, 100]) : Int(truncatingIfNeeded: r.i64())
            record = .progress(ProgressRecord(
                learnerID: learner, lessonID: r.pick(lessons), percent: percent,
                completedAt: percent == 100 || r.chance(0.2) ? time(&r) : nil))
        case 3:
            let (quiz, questions, maxScore) = r.pick(quizzes)
            let started = time(&r)
            record = .attempt(AttemptRecord(
                attemptID: r.chance(0.8) ? RecordID.uuidV7(milliseconds: UInt64(max(0, now)), using: &r.g) : "not-a-uuid",
                learnerID: learner, quizID: quiz,
                answers: (0..<(r.chance(0.8) ? questions : r.int(0...8))).map { _ in r.int(-1...3) },
                score: r.chance(0.8) ? r.int(0...maxScore) : Int(truncatingIfNeeded: r.i64()),
                maxScore: r.chance(0.9) ? maxScore : Int(truncatingIfNeeded: r.i64()),
                startedAt: started, finishedAt: r.chance(0.7) ? started &+ 60_000 : time(&r)))
        default:
            let course = r.pick(courses)
            record = .certificate(CertificateRecord(
                certificateID: r.chance(0.8) ? Identity.certificateID(learnerID: learner, courseID: course) : r.bytes(16).hexString,
                learnerID: learner, courseID: course, issuedAt: time(&r), revokedAt: r.chance(0.2) ? time(&r) : nil))
        }
        return Change(hlc: hlc, record: record)
    }
}

// MARK: - Hostile releases

/// Release offers signed by the trusted admins (k of n) with boundary fields, or with damaged
/// signatures: what a compromised admin quorum, or a hub replaying junk, could send.
enum HostileReleases {
    static func offer(
        _ r: inout FuzzRandom, base: Manifest, baseBytes: Data, current: UInt64, admins: [SigningKeyPair], threshold: Int,
        settings: FuzzSettings
    ) -> (Hocvu_Wire_V1_ReleaseOffer, String) {
        var m = base
        var what = [String]()
        if r.chance(0.7) {
            var version = switch r.int(0..<3) {
            case 0: current &+ 1
            case 1: UInt64(r.int(2...5))
            default: r.u64(near: current &+ 1)
            }
            if settings.avoid("release-version") { version = min(version, (1 << 53) - 1) }
            m.version = version
            m.curriculum.version = version
            what.append("version=\(Boundary.show(version))")
        }
        if r.chance(0.3) {
            m.expires = r.i64(near: Int64(Date().timeIntervalSince1970))
            m.created = r.chance(0.5) ? m.created : r.i64()
            what.append("created=\(Boundary.show(m.created)) expires=\(Boundary.show(m.expires))")
        }
        if r.chance(0.35) {
            // No files: complete, hence installable, at once.
            m.files = []
            for i in m.curriculum.courses.indices {
                for j in m.curriculum.courses[i].lessons.indices { m.curriculum.courses[i].lessons[j].files = [] }
            }
            what.append("no files")
        }
        if r.chance(0.15), !m.files.isEmpty {
            let i = r.int(0..<m.files.count)
            if !m.files[i].chunks.isEmpty {
                m.files[i].chunks[0].size = Int(truncatingIfNeeded: r.i64())
                what.append("chunk size=\(m.files[i].chunks[0].size)")
            }
        }
        let signed = what.isEmpty ? baseBytes : m.encoded()
        var bytes = signed
        var signers = Array(admins.prefix(threshold))
        switch r.int(0..<10) {
        case 0: bytes = r.mutate(bytes); what.append("bytes changed after signing")
        case 1: signers = Array(signers.prefix(max(0, threshold - 1))); what.append("below threshold")
        case 2: signers = [SigningKeyPair.generate()]; what.append("unknown signer")
        default: break
        }
        var p = Hocvu_Wire_V1_ReleaseOffer()
        p.manifest = bytes
        p.signatures = signers.map {
            let s = ReleaseSignature.sign(signed, with: $0)
            var x = Hocvu_Wire_V1_ReleaseSignature()
            x.key = Data(hex: s.key) ?? Data()
            x.signature = Data(hex: s.signature) ?? Data()
            return x
        }
        if r.chance(0.05) { p.manifest = r.bytes(upTo: 400); what = ["random manifest bytes"] }
        return (p, "{" + (what.isEmpty ? "the real release" : what.joined(separator: ", ")) + ", \(p.signatures.count) admin signatures}")
    }
}

// MARK: - Fake hub

/// A CURVE ROUTER with the hub's transport keys (the ones a site pins), driven by the test: it
/// says whatever the test wants to a real SiteClient. Its own ZAP handler admits every key.
final class FakeHub {
    let context: ZMQContext
    let keys: BoxKeyPair
    let zap: ZAPHandler
    var router: ZMQSocket
    private(set) var endpoint: String

    init(keys: BoxKeyPair) throws {
        context = try ZMQContext()
        self.keys = keys
        zap = try ZAPHandler(context, domain: "hocvu")
        router = try Self.makeRouter(context, keys)
        endpoint = try router.bind("tcp://127.0.0.1:*")
    }

    private static func makeRouter(_ context: ZMQContext, _ keys: BoxKeyPair) throws -> ZMQSocket {
        let r = try ZMQSocket(context, .router)
        try r.makeCurveServer(secretKey: keys.secretKey, zapDomain: "hocvu")
        try r.setRouterMandatory()
        try r.setMaxFrameSize(Int64(WireLimits.maxPayloadBytes + 4_096))
        return r
    }

    /// Drops every connection and listens again on the same endpoint: the site sees a disconnect,
    /// reconnects, and starts a new session with HELLO.
    func restart() throws {
        router.close()
        var lastError: (any Error)?
        for _ in 0..<50 {
            do {
                router = try Self.makeRouter(context, keys)
                try router.bind(endpoint)
                return
            } catch {
                lastError = error
                usleep(20_000)
            }
        }
        throw lastError!
    }

    /// Messages from sites within `milliseconds` (at least one poll), answering ZAP requests.
    func receive(milliseconds: Int, until: (([Data]) -> Bool)? = nil) throws -> [(routing: Data, frames: [Data])] {
        var out = [(routing: Data, frames: [Data])]()
        let end = Date().addingTimeInterval(Double(milliseconds) / 1_000)
        repeat {
            let ready = try zmqPoll([router, zap.socket], timeoutMilliseconds: 5)
            if ready.sockets[1] { try zap.handlePending { _ in .allow(userID: "site") } }
            while let m = try router.receive(maxFrames: 4) {
                out.append((m.frames[0], Array(m.frames.dropFirst())))
                if let until, until(Array(m.frames.dropFirst())) { return out }
            }
        } while Date() < end
        return out
    }

    @discardableResult
    func send(_ routing: Data, _ frames: [Data]) -> Bool {
        (try? router.send([routing] + frames)) ?? false
    }

    func close() { router.close() }
}
