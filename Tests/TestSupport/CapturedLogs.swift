import Logging
import Synchronization

/// A swift-log handler that keeps what it is given, for tests that check what the framework
/// and the daemon log.
public final class CapturedLogs: Sendable {
    /// One message as logged.
    public struct Entry: Sendable {
        /// Its level.
        public let level: Logger.Level
        /// Its text.
        public let message: String
        /// The logger's metadata and the message's own (which wins), as text.
        public let metadata: [String: String]

        /// The message followed by its metadata as `key=value`, in key order.
        public var line: String {
            ([message] + metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }).joined(separator: " ")
        }
    }
    private let entries = Mutex<[Entry]>([])

    /// An empty capture.
    public init() {}

    /// Everything logged so far, in order.
    public var all: [Entry] { entries.withLock { $0 } }

    /// A logger at `level` that records into this capture.
    public func logger(level: Logger.Level = .trace) -> Logger {
        var logger = Logger(label: "test") { _ in Handler(capture: self) }
        logger.logLevel = level
        return logger
    }

    private struct Handler: LogHandler {
        let capture: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let entry = Entry(
                level: event.level, message: event.message.description,
                metadata: metadata.merging(event.metadata ?? [:]) { _, own in own }.mapValues { "\($0)" })
            capture.entries.withLock { $0.append(entry) }
        }
    }
}
