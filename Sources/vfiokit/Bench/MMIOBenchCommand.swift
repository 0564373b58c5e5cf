import ArgumentParser
import CBenchReference
import Foundation
import PCI
import VFIOKit
import VFIOMock

/// 32-bit MMIO through VFIOKit's register API against a plain C volatile loop over the same
/// mapped BAR (a simulated device's shared-memory BAR, mapped through the framework).
struct MMIOBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mmio", abstract: "32-bit MMIO read and write, ns/op, against a C volatile loop.")

    @Option(help: "Accesses per round.")
    var iterations = 20_000_000

    @Option(help: "Rounds; the fastest of each side counts.")
    var rounds = 5

    @Flag(help: "Print JSON.")
    var json = false

    /// A one-register layout over the BAR under test.
    enum Scratch: RegisterLayout {
        static let extent = 4
        static let value = Register<Scratch, UInt32>(0)
    }

    struct Result: Encodable {
        let iterations: Int
        let read_ns: Double
        let write_ns: Double
        let c_read_ns: Double
        let c_write_ns: Double
        let read_ratio: Double
        let write_ratio: Double
        /// Heap allocations on the benchmark's thread during every timed round, absent when not counted.
        let read_allocations: Int?
        let write_allocations: Int?
        let allocations_not_counted: String?
    }

    func run() throws {
        guard iterations >= 1000, rounds >= 1 else { throw ValidationError("--iterations must be at least 1000 and --rounds at least 1") }
        AllocationCounter.preloadIfNotCounting()
        let kernel = MockKernel()
        let address = try PCIAddress(domain: 0, bus: 0, device: 5, function: 0)
        try kernel.plug(MemoryBARDevice(), at: address)
        let device = try PCIDevice.open(address, backend: .legacy, system: kernel)
        defer { device.close() }
        let bar = try device.bar(0)
        let registers = try bar.mmio(Scratch.self)
        guard registers.isMapped, let pointer = bar.pointer(covering: 0..<4) else {
            throw ValidationError("the benchmark BAR was not mapped, so there is no fast path to measure")
        }
        let n = iterations
        var sink: UInt32 = 0
        var read: UInt64 = 0
        var write: UInt64 = 0
        let thread = pthread_self()
        let readAllocations = AllocationCounter.countIfAvailable(onThread: thread) {
            read = best(rounds) {
                for _ in 0..<n { sink &+= registers.read(Scratch.value) }
            }
        }
        let writeAllocations = AllocationCounter.countIfAvailable(onThread: thread) {
            write = best(rounds) {
                for i in 0..<n { registers.write(Scratch.value, UInt32(truncatingIfNeeded: i)) }
            }
        }
        let cRead = best(rounds) { sink &+= cbench_read32_loop(pointer, UInt64(n)) }
        let cWrite = best(rounds) { cbench_write32_loop(pointer, UInt64(n)) }
        benchmarkSink = sink
        let perOp = { (ns: UInt64) in Double(ns) / Double(n) }
        let result = Result(
            iterations: n, read_ns: perOp(read), write_ns: perOp(write), c_read_ns: perOp(cRead), c_write_ns: perOp(cWrite),
            read_ratio: Double(read) / Double(max(cRead, 1)), write_ratio: Double(write) / Double(max(cWrite, 1)),
            read_allocations: readAllocations?.onThread, write_allocations: writeAllocations?.onThread,
            allocations_not_counted: AllocationCounter.unavailableReason)
        try printResult(result, json: json, lines: [
            "32-bit MMIO on a mapped BAR (\(n) accesses, best of \(rounds))",
            "  VFIOKit registers: read \(fixed(result.read_ns)) ns/op, write \(fixed(result.write_ns)) ns/op",
            "  C volatile loop:   read \(fixed(result.c_read_ns)) ns/op, write \(fixed(result.c_write_ns)) ns/op",
            "  ratio: read \(fixed(result.read_ratio)), write \(fixed(result.write_ratio)) (target ≤ 1.05)",
            allocationLine(readAllocations.flatMap { r in
                writeAllocations.map { w in "read \(r.onThread), write \(w.onThread) in the timed loops (target 0)" }
            }),
        ])
    }

    /// The fastest of `rounds` runs of `body`, in nanoseconds. Allocates nothing itself.
    private func best(_ rounds: Int, _ body: () -> Void) -> UInt64 {
        var fastest = UInt64.max
        for _ in 0..<rounds {
            let start = cbench_now_ns()
            body()
            fastest = min(fastest, cbench_now_ns() - start)
        }
        return fastest
    }
}

/// Where the read loops' sums end up, so the optimizer must compute them, as the C loop does.
nonisolated(unsafe) var benchmarkSink: UInt32 = 0
