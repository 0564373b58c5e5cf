import ArgumentParser
import Logging

/// `--log-level`: the framework's logs go to stderr at that level and above.
struct LoggingOptions: ParsableArguments {
    @Option(help: "Log to stderr at this level and above: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .warning

    /// A logger writing to stderr at `--log-level`.
    func logger(label: String = "vfiokit") -> Logger {
        var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = logLevel
        return logger
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
