// ThreadSanitizer's false positive on a continuation resumed before its task has suspended.
//
//   swiftc -sanitize=thread continuation-resume.swift -o /tmp/continuation-resume
//   /tmp/continuation-resume         # resumed at once: "data race", every run
//   /tmp/continuation-resume --late  # resumed after the task has suspended: no report
//
// A task publishes its continuation under a lock; another thread takes it under the same lock
// and resumes it with a value. `resume(returning:)`, inlined into this (instrumented) program,
// writes the value into the task's context; the task reads it on return from
// withUnsafeThrowingContinuation. When the resume comes first, swift_continuation_await in
// libswift_Concurrency.so (not instrumented) sees the status already Resumed with an acquire
// load and goes straight on, so ThreadSanitizer sees no happens-before between the write and
// the read. When the task has suspended first, the runtime's enqueue and run of the task are
// annotated for ThreadSanitizer, and nothing is reported. NVMeQueuePair.poll resumes its
// waiters this way, from the event loop's thread.
import Foundation
import Synchronization

/// The hand-over slot, under a pthread mutex (which ThreadSanitizer fully sees).
final class Handoff: @unchecked Sendable {
    private let lock = NSLock()
    private var value: UnsafeContinuation<[Int], any Error>?
    func withLock<R>(_ body: (inout UnsafeContinuation<[Int], any Error>?) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}

let late = CommandLine.arguments.contains("--late")
let rounds = late ? 5_000 : 400_000
let handoff = Handoff()
let done = Atomic<Bool>(false)
let resumer = Thread {
    var n = 0
    while !done.load(ordering: .acquiring) {
        if let c = handoff.withLock({ s -> UnsafeContinuation<[Int], any Error>? in
            defer { s = nil }; return s
        }) {
            n += 1
            if late { usleep(200) }
            c.resume(returning: [n, n + 1])
        }
    }
}
resumer.start()
var sum = 0
for _ in 0..<rounds {
    let v = try await withUnsafeThrowingContinuation { (c: UnsafeContinuation<[Int], any Error>) in
        handoff.withLock { $0 = c }
    }
    sum += v[0]
}
done.store(true, ordering: .releasing)
print("resumed \(rounds) continuations, sum \(sum)")
