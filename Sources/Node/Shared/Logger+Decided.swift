import Logging

extension Logger {
    /// Writes a log line a pure policy decided on: policies return plain strings (Equatable, so
    /// their tests compare them), the loop that carries them out logs them.
    func log(_ level: Logger.Level, _ message: String, _ metadata: [String: String]) {
        log(level: level, "\(message)", metadata: metadata.mapValues { Logger.MetadataValue.string($0) })
    }
}
