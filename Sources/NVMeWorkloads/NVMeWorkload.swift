#if canImport(Glibc)
import Glibc
#endif
import CLIOutput
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
    /// CPU time of the polling thread from its first submission to its last completion
    /// (`CLOCK_THREAD_CPUTIME_ID`): everything the thread did, spinning on an empty CQ included.
    public var cpuNanoseconds: UInt64 = 0
    /// Time from the moment a completion was seen to the return of the SQ doorbell write after
    /// resubmitting, summed over batches, less the clock's own cost (three clock reads per
    /// batch, ``clockNanoseconds`` each). Leaves out the first load of each batch's completion
    /// entry and every empty poll.
    public var workNanoseconds: UInt64 = 0
    /// Time inside the SQ tail doorbell writes (``NVMeQueuePair/ring()``), one per batch, less
    /// one clock read each.
    public var doorbellNanoseconds: UInt64 = 0
    public var batches = 0
    public var clockNanoseconds = 0.0
    /// Polls that found the CQ empty: the thread waited for the device.
    public var emptyPolls = 0

    public init() {}
}

/// A polled run's CPU figures, each named for what it holds. ``cpuNanosecondsPerIO`` is the one
/// to set against SPDK's whole-core figure; the others split it.
public struct PolledFigures: Sendable, Encodable {
    /// The polling thread's whole CPU time per I/O, spin included.
    public let cpu_ns_per_io: Double
    /// From a seen completion to the SQ doorbell's return, per I/O (no spin, no first load), by
    /// the monotonic clock: time the thread spent preempted there counts too.
    public let completion_to_doorbell_ns_per_io: Double
    /// One SQ tail doorbell write, and its share of an I/O at this run's batching.
    public let sq_doorbell_ns_per_write: Double
    public let sq_doorbell_ns_per_io: Double
    /// Empty polls per I/O: 0 at saturation (the CQ never found empty).
    public let empty_polls_per_io: Double
    public let ios_per_batch: Double
    /// The clock's cost subtracted per clock read.
    public let clock_ns: Double
    /// SPDK's published 13.85 M IOPS on one core, as ns per I/O, and `cpu_ns_per_io` against it.
    public let spdk_ns_per_io: Double
    public let ratio_to_spdk: Double

    public static let spdkNanosecondsPerIO = 1e9 / 13.85e6
    /// What the SQ doorbell write is: on the simulated controller (BAR 0 shared with its thread), and on a real one.
    public static let simulatedDoorbell = "a store to shared memory (the simulated controller's BAR 0), not an uncached MMIO write"
    public static let mmioDoorbell = "an uncached MMIO write to the controller's BAR 0"

    public init(_ s: PolledQueueStats) {
        let ios = Double(max(s.ios, 1)), batches = Double(max(s.batches, 1))
        cpu_ns_per_io = Double(s.cpuNanoseconds) / ios
        completion_to_doorbell_ns_per_io = max(0, Double(s.workNanoseconds) - 3 * Double(s.batches) * s.clockNanoseconds) / ios
        let doorbell = max(0, Double(s.doorbellNanoseconds) - Double(s.batches) * s.clockNanoseconds)
        sq_doorbell_ns_per_write = doorbell / batches
        sq_doorbell_ns_per_io = doorbell / ios
        empty_polls_per_io = Double(s.emptyPolls) / ios
        ios_per_batch = Double(s.ios) / batches
        clock_ns = s.clockNanoseconds
        spdk_ns_per_io = Self.spdkNanosecondsPerIO
        ratio_to_spdk = cpu_ns_per_io / Self.spdkNanosecondsPerIO
    }

    /// The figures as lines of text; `doorbell` says what the SQ doorbell write is on this device.
    public func lines(doorbell: String) -> [String] {
        [
            "  polling thread CPU: \(fixed(cpu_ns_per_io)) ns per I/O, spin included (target ≤ 200; SPDK \(fixed(spdk_ns_per_io)) "
                + "on one core, ratio \(fixed(ratio_to_spdk))); doorbell: \(doorbell); "
                + "\(fixed(empty_polls_per_io)) empty polls per I/O (0 = saturated)",
            "  split: completion seen to doorbell written \(fixed(completion_to_doorbell_ns_per_io)) ns per I/O; SQ doorbell write "
                + "\(fixed(sq_doorbell_ns_per_write)) ns, \(fixed(sq_doorbell_ns_per_io)) ns per I/O at \(fixed(ios_per_batch)) I/Os per batch; "
                + "clock \(fixed(clock_ns)) ns per read subtracted",
        ]
    }
}

/// Keeps `depth` commands in flight on one queue pair, each in its part of `slice`, polled from the calling thread, until
/// the control says stop; then waits for the last ones. Allocates nothing once running.
/// `steady` is called with true once the first commands are rung, before the polling loop,
/// and with false when the loop ends: a counter can bracket the loop alone, not the set-up.
public func runPolledQueue(
    _ driver: NVMeDriver, queue: Int, workload: NVMeWorkload, depth: Int, slice: NVMeDataRange, seed: UInt64,
    control: BenchControl, steady: (Bool) -> Void = { _ in }
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
        steady(true)
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
            var rang = begin
            if !stopping {
                for _ in 0..<n { try submit() }
                rang = monotonicNow()
                pair.ring()
            }
            let end = monotonicNow()
            if rang != begin { stats.doorbellNanoseconds += end - rang }
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
        steady(false)
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
