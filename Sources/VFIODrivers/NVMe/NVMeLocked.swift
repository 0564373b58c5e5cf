import Foundation

/// A value behind a lock that ThreadSanitizer sees: `NSLock`, a pthread mutex underneath. (On
/// Linux, Synchronization's `Mutex` waits on a futex TSan does not model, so TSan reports the
/// accesses it orders as races.)
final class NVMeLocked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<T, E: Error>(_ body: (inout Value) throws(E) -> T) throws(E) -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }

    /// `body`'s result, or nil without waiting when another thread holds the lock.
    func withLockIfAvailable<T>(_ body: (inout Value) -> T) -> T? {
        guard lock.try() else { return nil }
        defer { lock.unlock() }
        return body(&value)
    }
}
