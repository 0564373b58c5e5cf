#if canImport(Glibc)
import Glibc
#endif
import Logging

/// Log records for systemd's journal: each a line `<N>label: message key=value…` on stderr,
/// `N` the syslog priority (sd-daemon(3)), which journald takes as the record's priority and
/// strips, so `journalctl -p err` filters them. No timestamp: the journal adds its own. Each
/// record is one `write(2)`, so it reaches the journal at once and records never interleave.
struct JournalLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// The syslog priority of `level`: swift-log's levels are syslog's, trace folded into debug.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// True when stderr is the stream `JOURNAL_STREAM` names (`DEVICE:INODE`), as systemd sets
    /// it for a service's journal-connected output: a redirected stderr does not match.
    static func stderrIsTheJournal() -> Bool {
        guard let value = getenv("JOURNAL_STREAM").map({ String(cString: $0) }) else { return false }
        let parts = value.split(separator: ":")
        var info = stat()
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]), fstat(2, &info) == 0 else { return false }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        let fields = all.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
        // One line per record: a newline inside the message would start a record at the default priority.
        let message = "\(event.message)".split(separator: "\n", omittingEmptySubsequences: false)
            .joined(separator: "\n<\(Self.priority(event.level))>")
        let line = "<\(Self.priority(event.level))>\(label): \(message)\(fields)\n"
        var bytes = Array(line.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress! + written, $0.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            written += n
        }
    }
}
