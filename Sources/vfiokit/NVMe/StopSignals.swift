#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser

/// The pipe the stop signals' handler writes to (set once, before the handler is installed).
nonisolated(unsafe) private var stopSignalPipe: Int32 = -1

/// SIGTERM and SIGINT for a command that serves until told to stop: on whichever thread they
/// land, they write a byte to a pipe that ``wait()`` reads (the handler does nothing else:
/// write is async-signal-safe). Install once per process.
struct StopSignals {
    private let readEnd: Int32

    init() throws {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw ValidationError("pipe for the stop signals failed: errno \(errno)") }
        stopSignalPipe = ends[1]
        readEnd = ends[0]
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            var byte: UInt8 = 1
            _ = write(stopSignalPipe, &byte, 1)
        }
        sigaction(SIGTERM, &action, nil)
        sigaction(SIGINT, &action, nil)
    }

    /// Returns once SIGTERM or SIGINT came.
    func wait() {
        var byte: UInt8 = 0
        while read(readEnd, &byte, 1) < 0, errno == EINTR {}
    }
}
