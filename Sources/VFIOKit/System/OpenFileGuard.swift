import PCI

/// Keeps a device's files from being closed while a call uses them, so a call racing
/// ``close(_:)`` never reaches a descriptor number the process has reused for another file.
///
/// Calls run at the same time as each other; closing lets no new call in, sleeps until the
/// calls in progress have returned, and then releases the files, after which every call fails
/// with ``VFIOError/deviceClosed(_:operation:)``.
final class OpenFileGuard: Sendable {
    private struct State {
        var users = 0
        var closing = false
        var released = false
    }

    private let state = Monitor(State())
    let address: PCIAddress

    init(address: PCIAddress) { self.address = address }

    /// Runs `body` while the files are open; `operation` names it in the error otherwise.
    @discardableResult
    func use<T>(_ operation: @autoclosure () -> String, _ body: () throws(VFIOError) -> T) throws(VFIOError) -> T {
        try state.withLock { (s) throws(VFIOError) in
            guard !s.closing else { throw .deviceClosed(address, operation: operation()) }
            s.users += 1
        }
        defer {
            if state.withLock({ s in
                s.users -= 1
                return s.closing && s.users == 0
            }) {
                state.notifyAll()
            }
        }
        return try body()
    }

    /// Runs `release` once, after every call in progress has returned. Returns false when the
    /// files were closed already (once the first close has released them).
    @discardableResult
    func close(_ release: () -> Void) -> Bool {
        let first = state.withLock { s in
            defer { s.closing = true }
            return !s.closing
        }
        guard first else {
            state.wait { $0.released }
            return false
        }
        state.wait { $0.users == 0 }
        release()
        state.update { $0.released = true }
        return true
    }
}
