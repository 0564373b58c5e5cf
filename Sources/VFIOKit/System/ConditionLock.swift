#if canImport(Glibc)
import Glibc
#endif

/// A pthread mutex with a condition variable: waits sleep instead of spin. The framework's
/// one condition: `Mutex` (Synchronization) is the lock everywhere else, but it offers no
/// condition variable to sleep on, so where a thread must sleep until a state changes the
/// framework uses this, through ``Monitor`` (the event loop's thread life, the handler table's
/// runs, an open-file guard's close) and the mock kernel's lock (a blocking UIO read).
package final class ConditionLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    package init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` with the mutex held.
    @inline(__always)
    package func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Sleeps until ``broadcast()``; call only inside ``withLock(_:)``.
    package func wait() { pthread_cond_wait(condition, mutex) }

    /// Wakes every waiter; call inside ``withLock(_:)``.
    package func broadcast() { pthread_cond_broadcast(condition) }
}
