import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import Logging

/// `--log-level` and `--log-format`: the framework's logs go to stderr at that level and above,
/// as text, or with sd-daemon priority prefixes for the journal.
struct LoggingOptions: ParsableArguments {
    enum Format: String, CaseIterable, ExpressibleByArgument {
        /// `journal` when stderr is the journal's stream (`JOURNAL_STREAM`), else `text`.
        case auto
        /// A timestamp, the level and the message: for a terminal or a file.
        case text
        /// `<N>` priority prefixes and no timestamp: for systemd's journal.
        case journal
    }

    @Option(
        help:
            "Log to stderr at this level and above: trace, debug, info, notice, warning, error, critical (default: warning; notice for run)."
    )
    var logLevel: Logger.Level?

    @Option(
        help: "auto, text or journal (<N> priority prefixes, no timestamp); auto is journal when stderr is the journal (JOURNAL_STREAM).")
    var logFormat: Format = .auto

    /// A logger writing to stderr at `--log-level`, or at `defaultLevel` when none was given.
    func logger(label: String = "vfiokit", defaultLevel: Logger.Level = .warning) -> Logger {
        let journal = logFormat == .journal || (logFormat == .auto && JournalLogHandler.stderrIsTheJournal())
        var logger = Logger(label: label) { label in
            journal ? JournalLogHandler(label: label) as any LogHandler : StreamLogHandler.standardError(label: label)
        }
        logger.logLevel = logLevel ?? defaultLevel
        return logger
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
