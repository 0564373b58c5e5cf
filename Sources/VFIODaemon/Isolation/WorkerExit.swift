#if canImport(Glibc)
import Glibc
#endif

/// How a worker process ended, from its `waitpid` status, in words.
struct WorkerExit: Equatable, CustomStringConvertible {
    /// The signal that ended it, or nil when it exited.
    var signal: Int32?
    /// Its exit status when it exited.
    var status: Int32

    init(waitStatus: Int32) {
        let signal = waitStatus & 0x7f
        self.signal = signal == 0 ? nil : signal
        status = (waitStatus >> 8) & 0xff
    }

    /// True for an exit with status 0.
    var succeeded: Bool { signal == nil && status == 0 }

    /// "trapped (SIGILL)", "was killed by SIGKILL", "exited with status 1".
    var description: String {
        guard let signal else { return "exited with status \(status)" }
        let name = Self.names[signal] ?? "signal \(signal)"
        return [SIGILL, SIGTRAP].contains(signal) ? "trapped (\(name))" : "was killed by \(name)"
    }

    private static let names: [Int32: String] = [
        SIGILL: "SIGILL", SIGTRAP: "SIGTRAP", SIGABRT: "SIGABRT", SIGBUS: "SIGBUS", SIGFPE: "SIGFPE",
        SIGSEGV: "SIGSEGV", SIGKILL: "SIGKILL", SIGTERM: "SIGTERM", SIGINT: "SIGINT", SIGHUP: "SIGHUP",
    ]
}
