#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MallocInterposerSwift
import Synchronization

/// Heap allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign) made
/// while a piece of code runs, counted by ordo-one's malloc interposer.
///
/// vfiokit-bench links `libMallocInterposerSwift.so` ahead of libc, so the interposer's `malloc`
/// is the process's from the start; it only counts between ``count(onThread:_:)``'s brackets,
/// which only the benchmarks open. Counting is process-wide: one count at a time.
enum AllocationCounter {
    struct Counts {
        /// Allocations by every thread of the process.
        let total: Int
        /// Allocations by the watched thread.
        let onThread: Int
    }

    /// Why allocations cannot be counted in this process, or nil when they can. Found once, by
    /// counting an allocation that is certain to happen.
    static let unavailableReason: String? = probe()

    /// The sanitizer built into this process, whose allocator replaces `malloc` ahead of any
    /// interposer, or nil.
    static let sanitizer: String? = [("__asan_init", "AddressSanitizer"), ("__tsan_init", "ThreadSanitizer")]
        .first { dlsym(UnsafeMutableRawPointer(bitPattern: 0), $0.0) != nil }?.1

    /// Counts the allocations made while `body` runs, in the whole process and on `thread`.
    static func count(onThread thread: pthread_t, _ body: () throws -> Void) rethrows -> Counts {
        watchedThread.store(UInt(thread), ordering: .relaxed)
        watchedThreadAllocations.store(0, ordering: .relaxed)
        MallocInterposerSwift.setAllocationHook(countIfWatched)
        MallocInterposerSwift.reset()
        do {
            MallocInterposerSwift.hook()
            defer {
                MallocInterposerSwift.unhook()
                MallocInterposerSwift.setAllocationHook(nil)
            }
            try body()
        }
        return Counts(
            total: MallocInterposerSwift.getStatistics().mallocCount,
            onThread: watchedThreadAllocations.load(ordering: .relaxed))
    }

    /// The watched thread's allocations so far inside ``count(onThread:_:)``: read it twice to
    /// count a stretch of the body alone. Allocates nothing.
    static var watchedSoFar: Int { watchedThreadAllocations.load(ordering: .relaxed) }

    /// ``count(onThread:_:)`` when counting is on; otherwise runs `body` and returns nil.
    static func countIfAvailable(onThread thread: pthread_t, _ body: () throws -> Void) rethrows -> Counts? {
        guard unavailableReason == nil else {
            try body()
            return nil
        }
        return try count(onThread: thread, body)
    }

    /// When counting is off because another `malloc` comes before the interposer's (an
    /// `LD_PRELOAD`ed allocator, or a link order with libc first), runs this program again with
    /// the interposer preloaded first. Returns only if counting is on, or if `LD_PRELOAD` names
    /// the interposer already, or if a sanitizer owns `malloc`, or if the program cannot be run
    /// again: then counting stays off.
    static func preloadIfNotCounting() {
        guard unavailableReason != nil, sanitizer == nil, let library = interposerLibrary else { return }
        let preload = getenv("LD_PRELOAD").map { String(cString: $0) } ?? ""
        guard !preload.split(separator: ":").contains(Substring(library)) else { return }
        setenv("LD_PRELOAD", preload.isEmpty ? library : "\(library):\(preload)", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        if preload.isEmpty { unsetenv("LD_PRELOAD") } else { setenv("LD_PRELOAD", preload, 1) }
    }

    /// The path of the interposer's shared object as this process mapped it.
    static let interposerLibrary: String? = {
        // Read to the end: /proc files report no size, and a read sized by it stops at one page.
        guard let file = FileHandle(forReadingAtPath: "/proc/self/maps"), let data = try? file.readToEnd() else { return nil }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").lazy
            .compactMap { $0.split(separator: " ", omittingEmptySubsequences: true).last }
            .first { $0.hasSuffix("/libMallocInterposerSwift.so") }
            .map(String.init)
    }()

    private static func probe() -> String? {
        let counts = count(onThread: pthread_self()) { probeSink = ProbeAllocation() }
        probeSink = nil
        if counts.onThread >= 1 && counts.total >= 1 { return nil }
        if let sanitizer {
            return "this build has \(sanitizer), whose malloc comes before the interposer's; run a build without sanitizers"
        }
        let library = interposerLibrary ?? "libMallocInterposerSwift.so"
        return "the malloc interposer (\(library)) does not see this process's allocations, as another malloc comes before it; "
            + "run with LD_PRELOAD=\(library) first"
    }
}

/// The thread ``AllocationCounter`` watches, and how many allocations it made.
private let watchedThread = Atomic<UInt>(0)
private let watchedThreadAllocations = Atomic<Int>(0)

/// Runs inside `malloc` on the allocating thread, so it must not allocate.
private let countIfWatched: MallocInterposerSwift.AllocationHook = { _ in
    if pthread_self() == watchedThread.load(ordering: .relaxed) {
        watchedThreadAllocations.add(1, ordering: .relaxed)
    }
}

private final class ProbeAllocation {}
/// Holds the probe's allocation, so the optimizer cannot remove it.
nonisolated(unsafe) private var probeSink: ProbeAllocation?
