#if canImport(Glibc)
import Glibc
#endif

/// The mock kernel's one lock. Every piece of kernel state is read and changed only inside
/// ``withLock(_:)``. Device models are never called while it is held, so a device may call
/// back into its ``DeviceBus`` from any thread, including from inside a register access.
final class KernelLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    @inline(__always)
    func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Waits for ``broadcast()``; call only inside ``withLock(_:)``.
    func wait() { pthread_cond_wait(condition, mutex) }

    /// Wakes every waiter; call inside ``withLock(_:)``.
    func broadcast() { pthread_cond_broadcast(condition) }
}
