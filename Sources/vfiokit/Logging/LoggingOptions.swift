import ArgumentParser
import Logging

/// `--log-level`: the framework's logs go to stderr at that level and above.
struct LoggingOptions: ParsableArguments {
    @Option(help: "Log to stderr at this level and above: trace, debug, info, notice, warning, error, critical (default: warning; notice for run).")
    var logLevel: Logger.Level?

    /// A logger writing to stderr at `--log-level`, or at `defaultLevel` when none was given.
    func logger(label: String = "vfiokit", defaultLevel: Logger.Level = .warning) -> Logger {
        var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = logLevel ?? defaultLevel
        return logger
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
