// ThreadSanitizer's false positive on Synchronization.Mutex under contention, in full.
//
//   swiftc -sanitize=thread mutex-handoff.swift -o /tmp/mutex-handoff
//   /tmp/mutex-handoff            # Synchronization.Mutex: "Swift access race", every run
//   /tmp/mutex-handoff --pthread  # the same program on a pthread mutex: no report
//
// Two threads take turns on one lock and touch the value only inside it, so there is no race.
// Mutex's uncontended lock and unlock are atomics inlined into this (instrumented) program,
// which ThreadSanitizer sees. A contended hand-over goes through `_lockSlow`/`_unlockSlow` in
// libswiftSynchronization.so (not instrumented), which call syscall(SYS_futex,
// FUTEX_LOCK_PI/FUTEX_UNLOCK_PI): the kernel makes the waiter the owner, and no user-space
// acquire happens that ThreadSanitizer could see.
import Foundation
import Synchronization

final class PthreadLocked: @unchecked Sendable {
    private let lock = NSLock()
    private var value: [Int] = []
    func withLock<R>(_ body: (inout [Int]) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}

let rounds = 200_000
let mutex = Mutex<[Int]>([])
let pthread = PthreadLocked()
let usePthread = CommandLine.arguments.contains("--pthread")
func append(_ i: Int) { usePthread ? pthread.withLock { $0.append(i) } : mutex.withLock { $0.append(i) } }
func count() -> Int { usePthread ? pthread.withLock { $0.count } : mutex.withLock { $0.count } }

Thread { for i in 0..<rounds { append(i) } }.start()
while count() < rounds {}
print(usePthread ? "pthread mutex" : "Synchronization.Mutex", "handed over", rounds, "appends")
