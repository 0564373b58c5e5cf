#if canImport(Glibc)
import Glibc
#endif
import PCI

/// Keeps a device's files from being closed while a call uses them, so a call racing
/// ``close(_:)`` never reaches a descriptor number the process has reused for another file.
///
/// Calls share a read lock; closing takes the write lock once, after which every call fails
/// with ``VFIOError/deviceClosed(_:operation:)``.
final class OpenFileGuard: @unchecked Sendable {
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>
    private var closed = false
    let address: PCIAddress

    init(address: PCIAddress) {
        self.address = address
        lock = .allocate(capacity: 1)
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    /// Runs `body` while the files are open; `operation` names it in the error otherwise.
    @discardableResult
    func use<T>(_ operation: @autoclosure () -> String, _ body: () throws(VFIOError) -> T) throws(VFIOError) -> T {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        guard !closed else { throw .deviceClosed(address, operation: operation()) }
        return try body()
    }

    /// Runs `release` once, after every call in progress has returned. Returns false when the
    /// files were closed already.
    @discardableResult
    func close(_ release: () -> Void) -> Bool {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        guard !closed else { return false }
        closed = true
        release()
        return true
    }
}
