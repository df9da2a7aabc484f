import Foundation
import Logging
import Synchronization

/// hocvu's log lines on stderr, in one of two shapes:
///
/// - **journal** (under systemd: `$JOURNAL_STREAM` set, or stderr not a terminal): each line starts
///   with its sd-daemon(3) priority, `<3>The sync loop stopped …`, and carries no timestamp —
///   journald stamps it, and `journalctl -p err` filters on the priority;
/// - **human** (a terminal): `2026-01-01T08:00:00.123+07:00 warning hocvu.site: message key=value`.
///
/// `HOCVU_LOG_FORMAT=journal|human` overrides the choice. One record is always one line (a newline
/// in a message or value is escaped), so journald never splits a record into lines of the default
/// priority. Metadata whose key names a person (national ID, name, phone) is replaced by
/// `<redacted>`: a safety net, since no call site logs personal data.
struct HocVuLogHandler: LogHandler {
    enum Style: Equatable, Sendable { case journal, human }

    let label: String
    let style: Style
    let sink: @Sendable (String) -> Void
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, style: Style = Self.styleForStandardError(), sink: @escaping @Sendable (String) -> Void = Self.writeToStandardError) {
        self.label = label
        self.style = style
        self.sink = sink
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        if let error = event.error, merged["error"] == nil { merged["error"] = "\(error)" }
        sink(Self.format(style: style, level: event.level, label: label, message: "\(event.message)", metadata: merged, date: Date()))
    }

    /// The sd-daemon(3) prefix for a swift-log level (swift-log has no alert or emergency).
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .critical: 2
        case .error: 3
        case .warning: 4
        case .notice: 5
        case .info: 6
        case .debug, .trace: 7
        }
    }

    /// Metadata keys never printed as they are (checked lower-cased, `-` and `.` read as `_`).
    static let personalKeys: Set<String> = [
        "national_id", "nationalid", "full_name", "fullname", "name", "learner_name", "phone", "email", "birth_date", "address",
    ]

    static func format(style: Style, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata, date: Date)
        -> String
    {
        var line = ""
        switch style {
        case .journal:
            line = "<\(priority(level))>\(oneLine(message))"
        case .human:
            line = "\(timestamp(date)) \(level) \(label): \(oneLine(message))"
        }
        for key in metadata.keys.sorted() {
            let normalized = key.lowercased().replacingOccurrences(of: "-", with: "_").replacingOccurrences(of: ".", with: "_")
            let value = personalKeys.contains(normalized) ? "<redacted>" : oneLine("\(metadata[key]!)")
            line += " \(key)=\(quoted(value))"
        }
        return line
    }

    /// Newlines escaped, so one record is one line.
    static func oneLine(_ s: String) -> String {
        guard s.contains(where: { $0.isNewline }) else { return s }
        return s.replacingOccurrences(of: "\r\n", with: "\\n").replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\r")
    }

    /// A value with spaces is quoted so `key=value` pairs stay parseable.
    static func quoted(_ s: String) -> String {
        guard s.isEmpty || s.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    static func timestamp(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        f.timeZone = .current
        return f.string(from: date)
    }

    /// Journal lines under systemd or whenever stderr is not a terminal; human lines on a terminal.
    static func style(environment: [String: String], standardErrorIsTerminal: Bool) -> Style {
        switch environment["HOCVU_LOG_FORMAT"] {
        case "journal": return .journal
        case "human": return .human
        default: break
        }
        if let stream = environment["JOURNAL_STREAM"], !stream.isEmpty { return .journal }
        return standardErrorIsTerminal ? .human : .journal
    }

    static func styleForStandardError() -> Style {
        style(environment: ProcessInfo.processInfo.environment, standardErrorIsTerminal: isatty(STDERR_FILENO) == 1)
    }

    private static let lock = Mutex(())

    /// One `write(2)` per line, under a lock: lines from several threads never interleave.
    @Sendable static func writeToStandardError(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        lock.withLock { _ in
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
                if n <= 0 { if errno == EINTR { continue }; return }
                offset += n
            }
        }
    }
}
