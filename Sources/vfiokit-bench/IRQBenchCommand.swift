import ArgumentParser
import CLIOutput
import CBenchReference
import Foundation
import Synchronization
import VFIOKit
import VFIOMock

/// Interrupt dispatch latency: eventfd signalled to handler run, through VFIOKit's event loop
/// and through a C epoll loop, each signalled the same way, in the same run.
struct IRQBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "irq", abstract: "Interrupt dispatch latency, p50 and p99, against C epoll.")

    @Option(help: "Interrupts to time on each side.")
    var samples = 20_000

    @Flag(help: "Print JSON.")
    var json = false

    struct Result: Encodable {
        let samples: Int
        let p50_ns: UInt64
        let p99_ns: UInt64
        let c_p50_ns: UInt64
        let c_p99_ns: UInt64
        let p50_ratio: Double
        let p99_ratio: Double
        /// Interrupts signalled and handled, untimed, while heap allocations were counted: on the
        /// event loop's thread and in the whole process (absent when not counted).
        let dispatches: Int
        let dispatch_allocations: Int?
        let dispatch_allocations_total: Int?
        let allocations_not_counted: String?
    }

    @Option(help: "Alternating rounds of each side, so both see the same background load.")
    var rounds = 10

    func run() throws {
        guard samples >= 100, rounds >= 1 else { throw ValidationError("--samples must be at least 100 and --rounds at least 1") }
        AllocationCounter.preloadIfNotCounting()
        let perRound = max(samples / rounds, 1)
        let bench = try FrameworkDispatch()
        defer { bench.close() }
        var framework: [UInt64] = []
        var reference: [UInt64] = []
        for _ in 0..<rounds {
            framework += try bench.latencies(perRound)
            var chunk = [UInt64](repeating: 0, count: perRound)
            let rc = cbench_irq_reference(UInt64(perRound), &chunk)
            guard rc == 0 else { throw ValidationError("the C reference failed: errno \(-rc)") }
            reference += chunk
        }
        let allocations = try AllocationCounter.countIfAvailable(onThread: bench.loopThread) {
            for _ in 0..<samples { _ = try bench.fire() }
        }
        let (p50, p99) = percentiles(framework)
        let (cp50, cp99) = percentiles(reference)
        let result = Result(
            samples: framework.count, p50_ns: p50, p99_ns: p99, c_p50_ns: cp50, c_p99_ns: cp99,
            p50_ratio: Double(p50) / Double(max(cp50, 1)), p99_ratio: Double(p99) / Double(max(cp99, 1)),
            dispatches: samples, dispatch_allocations: allocations?.onThread, dispatch_allocations_total: allocations?.total,
            allocations_not_counted: AllocationCounter.unavailableReason)
        try printResult(
            result, json: json,
            lines: [
                "interrupt dispatch, eventfd signalled to handler run (\(framework.count) samples each, \(rounds) alternating rounds)",
                "  VFIOKit event loop: p50 \(p50) ns, p99 \(p99) ns",
                "  C epoll reference:  p50 \(cp50) ns, p99 \(cp99) ns",
                "  ratio: p50 \(fixed(result.p50_ratio)), p99 \(fixed(result.p99_ratio)) (target ≤ 1.2)",
                allocationLine(
                    allocations.map {
                        "\($0.onThread) on the event loop's thread, \($0.total) in the process, over \(samples) dispatches (target 0)"
                    }),
            ])
    }
}

/// An MSI vector of a simulated device, delivered through VFIOKit's event loop. Each sample
/// signals the vector's eventfd as the kernel does when the device interrupts, and yields
/// until the handler has stamped it.
private final class FrameworkDispatch: Sendable {
    let device: PCIDevice
    let loop: EventLoop
    let source: InterruptSource
    let registration = Mutex<EventLoop.Registration?>(nil)
    let handled = Atomic<UInt64>(0)
    let stamp = Atomic<UInt64>(0)
    /// The event loop's thread, as its handler last saw it.
    let loopThreadID = Atomic<UInt>(0)

    init() throws {
        device = try openSimulated(EduDevice()).device
        guard let source = try device.interrupts.enable(.msi).first else { throw ValidationError("the simulated device has no MSI") }
        self.source = source
        // The eventfds are the host kernel's, so the loop waits on them with real epoll, as in production.
        loop = try EventLoop()
        try registration.withLock { r in
            r = try loop.register(source) { [unowned self] _ in
                self.stamp.store(cbench_now_ns(), ordering: .relaxed)
                self.loopThreadID.store(UInt(pthread_self()), ordering: .relaxed)
                self.handled.add(1, ordering: .releasing)
            }
        }
        try loop.start()
    }

    var loopThread: pthread_t { pthread_t(loopThreadID.load(ordering: .relaxed)) }

    func latencies(_ count: Int) throws -> [UInt64] {
        try (0..<count).map { _ in try fire() }
    }

    /// Signals the vector once and yields until the handler has run; returns the latency.
    func fire() throws -> UInt64 {
        var one: UInt64 = 1
        let target = handled.load(ordering: .acquiring) + 1
        let start = cbench_now_ns()
        guard write(source.fd.rawValue, &one, 8) == 8 else { throw ValidationError("eventfd write failed: errno \(errno)") }
        while handled.load(ordering: .acquiring) < target { sched_yield() }
        return stamp.load(ordering: .relaxed) &- start
    }

    func close() {
        loop.stop()
        registration.withLock { $0 = nil }  // ends it
        device.close()
    }
}
