import Foundation
import Logging
import Synchronization
import Testing

@testable import hocvu

@Suite struct LogFormatTests {
    let date = Date(timeIntervalSince1970: 1_767_225_600.25)  // 2026-01-01T00:00:00.25Z

    func line(_ style: HocVuLogHandler.Style, _ level: Logger.Level, _ message: String, _ metadata: Logger.Metadata = [:]) -> String {
        HocVuLogHandler.format(style: style, level: level, label: "hocvu.site", message: message, metadata: metadata, date: date)
    }

    @Test func journalLinesCarryTheSdDaemonPriorityAndNoTimestamp() {
        let expected: [(Logger.Level, Int)] = [
            (.critical, 2), (.error, 3), (.warning, 4), (.notice, 5), (.info, 6), (.debug, 7), (.trace, 7),
        ]
        for (level, priority) in expected {
            #expect(line(.journal, level, "Site syncing") == "<\(priority)>Site syncing")
        }
        #expect(line(.journal, .warning, "Clock repaired on open", ["repair": "reset a clock", "count": "2"])
            == "<4>Clock repaired on open count=2 repair=\"reset a clock\"")
        #expect(!line(.journal, .error, "x").contains("2026"), "journald stamps the time itself")
    }

    @Test func humanLinesCarryATimestampLevelAndLabel() {
        let l = line(.human, .error, "The sync loop stopped", ["error": "disk full"])
        #expect(!l.hasPrefix("<"))
        #expect(l.contains(" error hocvu.site: The sync loop stopped error=\"disk full\""))
        let stamp = String(l.prefix(while: { $0 != " " }))
        #expect(ISO8601DateFormatter.withFractions.date(from: stamp) == date, "\(stamp) is the event's time")
    }

    @Test func oneRecordIsOneLine() {
        let l = line(.journal, .error, "first\nsecond", ["detail": "a\nb"])
        #expect(!l.contains("\n"))
        #expect(l == "<3>first\\nsecond detail=a\\nb")
    }

    @Test func personalMetadataIsRedacted() {
        let l = line(.journal, .info, "imported", ["national_id": "001234567890", "full-name": "Nguyễn Văn A", "count": "3"])
        #expect(!l.contains("001234567890") && !l.contains("Nguyễn"))
        #expect(l == "<6>imported count=3 full-name=<redacted> national_id=<redacted>")
    }

    @Test func styleFollowsSystemdAndTheTerminal() {
        typealias H = HocVuLogHandler
        #expect(H.style(environment: ["JOURNAL_STREAM": "8:12345"], standardErrorIsTerminal: true) == .journal)
        #expect(H.style(environment: [:], standardErrorIsTerminal: false) == .journal)
        #expect(H.style(environment: [:], standardErrorIsTerminal: true) == .human)
        #expect(H.style(environment: ["HOCVU_LOG_FORMAT": "human"], standardErrorIsTerminal: false) == .human)
        #expect(H.style(environment: ["HOCVU_LOG_FORMAT": "journal", "JOURNAL_STREAM": ""], standardErrorIsTerminal: true) == .journal)
    }

    @Test func theHandlerHonoursLevelAndMetadata() {
        let lines = Mutex<[String]>([])
        var logger = Logger(label: "hocvu.hub") { label in
            HocVuLogHandler(label: label, style: .journal, sink: { s in lines.withLock { $0.append(s) } })
        }
        logger.logLevel = .notice
        logger[metadataKey: "role"] = "hub"
        logger.info("not shown")
        logger.notice("Hub ready", metadata: ["endpoint": "tcp://127.0.0.1:7400"])
        logger.critical("Cannot start")
        #expect(lines.withLock { $0 } == ["<5>Hub ready endpoint=tcp://127.0.0.1:7400 role=hub", "<2>Cannot start role=hub"])
    }
}

extension ISO8601DateFormatter {
    static var withFractions: ISO8601DateFormatter {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }
}
