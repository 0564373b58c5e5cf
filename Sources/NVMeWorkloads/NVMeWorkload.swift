#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import VFIODrivers
import VFIOKit

/// One benchmark workload: which command, how big, where.
public struct NVMeWorkload: Sendable {
    public enum Kind: String, CaseIterable, Sendable {
        case randread, randwrite, read, write
        public var writes: Bool { self == .randwrite || self == .write }
        public var random: Bool { self == .randread || self == .randwrite }
    }

    public let kind: Kind
    public let namespaceID: UInt32
    /// Logical blocks per I/O and bytes per I/O.
    public let blocks: Int
    public let bytes: Int
    /// How many I/O-sized slots the namespace has.
    public let slots: UInt64

    public init(kind: Kind, namespaceID: UInt32, blocks: Int, bytes: Int, slots: UInt64) {
        self.kind = kind
        self.namespaceID = namespaceID
        self.blocks = blocks
        self.bytes = bytes
        self.slots = slots
    }

    /// The LBA of the `n`th I/O: random (xorshift) or sequential, wrapping at the end.
    @inline(__always)
    public func lba(_ n: Int, _ state: inout UInt64) -> UInt64 {
        if kind.random {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return (state % slots) * UInt64(blocks)
        }
        return (UInt64(n) % slots) * UInt64(blocks)
    }
}

/// What one polled queue did.
public struct PolledQueueStats: Sendable {
    public var ios = 0
    public var failures = 0
    public var firstFailure: String?
    /// CPU time of the polling thread while the workload ran, spinning included.
    public var cpuNanoseconds: UInt64 = 0
    /// Time inside the driver's completion and submission code: from the moment a completion
    /// was seen to the doorbell write after resubmitting, summed over batches, less the
    /// clock's own cost (`clockNanoseconds` per batch).
    public var workNanoseconds: UInt64 = 0
    public var batches = 0
    public var clockNanoseconds = 0.0
    /// Polls that found the CQ empty: time waiting for the device, not driver work.
    public var emptyPolls = 0

    public var driverNanosecondsPerIO: Double {
        ios == 0 ? 0 : max(0, Double(workNanoseconds) - Double(batches) * clockNanoseconds) / Double(ios)
    }
}

/// Keeps `depth` commands in flight on one queue pair, each in its part of `slice`, polled from the calling thread, until
/// the control says stop; then waits for the last ones. Allocates nothing once running.
public func runPolledQueue(
    _ driver: NVMeDriver, queue: Int, workload: NVMeWorkload, depth: Int, slice: NVMeDataRange, seed: UInt64,
    control: BenchControl
) throws(NVMeError) -> PolledQueueStats {
    var stats = PolledQueueStats()
    stats.clockNanoseconds = control.clockNanoseconds
    return try driver.withQueuePair(queue) { (pair) throws(NVMeError) -> PolledQueueStats in
        var random = seed | 1
        var issued = 0
        var failure: NVMeCompletion?
        let timeout = UInt64(driver.configuration.commandTimeout / .nanoseconds(1))
        @inline(__always) func submit() throws(NVMeError) {
            let command = NVMeCommand.readWrite(
                write: workload.kind.writes, namespaceID: workload.namespaceID, lba: workload.lba(issued, &random), blocks: workload.blocks)
            let range = NVMeDataRange(deviceAddress: slice.deviceAddress + UInt64((issued % depth) * workload.bytes), count: workload.bytes)
            try pair.submit(command, data: range)
            issued += 1
        }
        let start = threadCPUTime()
        for _ in 0..<depth { try submit() }
        pair.ring()
        var stopping = false
        var lastCompletion = monotonicNow()
        var reported = 0
        while pair.outstanding > 0 {
            guard pair.hasCompletion else {
                stats.emptyPolls += 1
                // Waiting for the device: let a controller thread sharing this CPU run.
                if stats.emptyPolls & 63 == 0 { sched_yield() }
                if stats.emptyPolls & 0xffff == 0 {
                    if monotonicNow() - lastCompletion > timeout {
                        throw .timeout(command: "benchmark I/O on queue \(pair.id)", milliseconds: Int(timeout / 1_000_000),
                                       recovery: "the benchmark stopped; the controller is shut down on exit")
                    }
                    if control.stop.load(ordering: .relaxed) { stopping = true }
                }
                continue
            }
            let begin = monotonicNow()
            let n = pair.poll { c in
                if !c.succeeded {
                    if failure == nil { failure = c }
                    stats.failures += 1
                }
            }
            if !stopping {
                for _ in 0..<n { try submit() }
                pair.ring()
            }
            let end = monotonicNow()
            stats.workNanoseconds += end - begin
            stats.batches += 1
            stats.ios += n
            if stats.ios - reported >= 1024 {
                control.progress.add(stats.ios - reported, ordering: .relaxed)
                reported = stats.ios
                lastCompletion = end
                if control.stop.load(ordering: .relaxed) { stopping = true }
            }
        }
        stats.cpuNanoseconds = threadCPUTime() - start
        control.progress.add(stats.ios - reported, ordering: .relaxed)
        if let failure { stats.firstFailure = failure.status.description }
        return stats
    }
}

/// What two back-to-back monotonic clock reads measure: the clock's own share of a timed
/// interval. The median of many, so a preemption does not count.
public func clockCost() -> Double {
    var samples = [UInt64](repeating: 0, count: 10_001)
    for i in samples.indices {
        let a = monotonicNow()
        samples[i] = monotonicNow() - a
    }
    samples.sort()
    return Double(samples[samples.count / 2])
}

/// This thread's CPU time in nanoseconds.
@inline(__always)
public func threadCPUTime() -> UInt64 { clockNanoseconds(CLOCK_THREAD_CPUTIME_ID) }

@inline(__always)
public func monotonicNow() -> UInt64 { clockNanoseconds(CLOCK_MONOTONIC) }

@inline(__always)
private func clockNanoseconds(_ clock: clockid_t) -> UInt64 {
    var ts = timespec()
    clock_gettime(clock, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
