import Foundation
import Synchronization
import Testing
@testable import vfiokit_bench

/// The counter `vfiokit-bench` reports with, checked on code whose allocations are known, in
/// this process (which links the interposer as vfiokit-bench does). Counting is process-wide, so
/// these run one at a time; other suites' threads may allocate meanwhile, so only the watched
/// thread's counts are exact.
///
/// Under AddressSanitizer or ThreadSanitizer the sanitizer's allocator serves every malloc of
/// the process ahead of the interposer, so there is nothing to count: the suite is skipped
/// (`BenchCommandTests` checks that the bench then names the sanitizer instead of a count).
@Suite(.serialized, .enabled(if: AllocationCounter.sanitizer == nil, "a sanitizer's malloc comes before the interposer's"))
struct AllocationCounterTests {
    final class Box: Sendable {
        let value: Int
        init(_ value: Int) { self.value = value }
    }
    nonisolated(unsafe) static var kept: Box?

    @Test func countsInThisProcess() {
        #expect(AllocationCounter.unavailableReason == nil)
        #expect(AllocationCounter.interposerLibrary?.hasSuffix("/libMallocInterposerSwift.so") == true)
    }

    @Test func countsEveryObjectAllocatedOnTheWatchedThread() {
        let counts = AllocationCounter.count(onThread: pthread_self()) {
            for i in 0..<1000 { Self.kept = Box(i) }
        }
        Self.kept = nil
        #expect(counts.onThread == 1000)
        #expect(counts.total >= 1000)
    }

    @Test func countsNothingForCodeThatDoesNotAllocate() {
        var sum = 0
        let counts = AllocationCounter.count(onThread: pthread_self()) {
            for i in 0..<1000 { sum &+= i }
        }
        #expect(sum == 499_500)
        #expect(counts.onThread == 0)
    }

    /// Allocations on another thread count in the total, not on the watched thread, and the
    /// other way round.
    @Test func attributesAllocationsToTheirThread() throws {
        final class Worker: Sendable {
            let thread = Atomic<UInt>(0)
            let go = Atomic<Bool>(false)
            let done = Atomic<Bool>(false)
            let exit = Atomic<Bool>(false)
            nonisolated(unsafe) static var kept: Box?
        }
        let worker = Worker()
        Thread {
            worker.thread.store(UInt(pthread_self()), ordering: .releasing)
            while !worker.go.load(ordering: .acquiring) { sched_yield() }
            for i in 0..<500 { Worker.kept = Box(i) }
            worker.done.store(true, ordering: .releasing)
            while !worker.exit.load(ordering: .acquiring) { sched_yield() }
        }.start()
        while worker.thread.load(ordering: .acquiring) == 0 { sched_yield() }
        defer { worker.exit.store(true, ordering: .releasing) }

        let watchingWorker = AllocationCounter.count(onThread: pthread_t(worker.thread.load(ordering: .acquiring))) {
            worker.go.store(true, ordering: .releasing)
            for i in 0..<300 { Self.kept = Box(i) }
            while !worker.done.load(ordering: .acquiring) { sched_yield() }
        }
        #expect(watchingWorker.onThread == 500)
        #expect(watchingWorker.total >= 800)

        let watchingThisThread = AllocationCounter.count(onThread: pthread_self()) {
            for i in 0..<300 { Self.kept = Box(i) }
        }
        #expect(watchingThisThread.onThread == 300)
        Self.kept = nil
    }
}
