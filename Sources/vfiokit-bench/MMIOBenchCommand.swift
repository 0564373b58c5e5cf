import ArgumentParser
import CLIOutput
import CBenchReference
import Foundation
import VFIOKit
import VFIOMock

/// 32-bit MMIO through VFIOKit's register API against plain C volatile loops over the same
/// mapped BAR (a simulated device's shared-memory BAR, mapped through the framework): one
/// register over and over, and eight registers of a layout in turn.
struct MMIOBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mmio", abstract: "32-bit MMIO read and write, ns/op, against C volatile loops.")

    @Option(help: "Accesses per round.")
    var iterations = 1_000_000

    /// Many short rounds: on a shared machine the fastest of them ran undisturbed.
    @Option(help: "Rounds, alternating VFIOKit and C; the fastest of each side counts.")
    var rounds = 100

    @Flag(help: "Print JSON.")
    var json = false

    /// The single-register pattern's layout.
    enum Scratch: RegisterLayout {
        static let extent = 4
        static var value: Register<Self, UInt32> { .init(0) }
    }

    /// The scattered pattern's layout: eight registers at the C reference's offsets.
    enum Scattered: RegisterLayout {
        static let extent = 0x100
        static var control: Register<Self, UInt32> { .init(0x00) }
        static var status: Register<Self, UInt32> { .init(0x04) }
        static var mask: Register<Self, UInt32> { .init(0x08) }
        static var head: Register<Self, UInt32> { .init(0x20) }
        static var tail: Register<Self, UInt32> { .init(0x24) }
        static var doorbell: Register<Self, UInt32> { .init(0x60) }
        static var acknowledge: Register<Self, UInt32> { .init(0x64) }
        static var counter: Register<Self, UInt32> { .init(0x80) }

        /// The offsets in the order the loops visit them.
        static var offsets: [Int] {
            [control, status, mask, head, tail, doorbell, acknowledge, counter].map(\.offset)
        }
    }

    struct Result: Encodable {
        let iterations: Int
        let read_ns, write_ns, c_read_ns, c_write_ns, read_ratio, write_ratio: Double
        let scattered_read_ns, scattered_write_ns, c_scattered_read_ns, c_scattered_write_ns: Double
        let scattered_read_ratio, scattered_write_ratio: Double
        /// Heap allocations on the benchmark's thread during VFIOKit's timed rounds, absent when not counted.
        let read_allocations, write_allocations, scattered_read_allocations, scattered_write_allocations: Int?
        let allocations_not_counted: String?
    }

    func run() throws {
        guard iterations >= 1000, rounds >= 1 else { throw ValidationError("--iterations must be at least 1000 and --rounds at least 1") }
        let cOffsets = withUnsafeBytes(of: cbench_scattered_offsets) { Array($0.bindMemory(to: UInt32.self)).map(Int.init) }
        guard Scattered.offsets == cOffsets else {
            throw ValidationError("the scattered layout \(Scattered.offsets) differs from the C reference's \(cOffsets)")
        }
        AllocationCounter.preloadIfNotCounting()
        let device = try openSimulated(MemoryBARDevice()).device
        defer { device.close() }
        let bar = try device.bar(0)
        let one = try bar.mmio(Scratch.self)
        let eight = try bar.mmio(Scattered.self)
        guard one.isMapped, eight.isMapped, let pointer = bar.pointer(covering: 0..<Scattered.extent) else {
            throw ValidationError("the benchmark BAR was not mapped, so there is no fast path to measure")
        }
        let n = iterations
        let passes = UInt64(n / 8)
        var sink: UInt32 = 0
        // The read loops sum in a local, as the C loops do, and hand the sum to `sink` once.
        let read = compare {
            var sum: UInt32 = 0
            for _ in 0..<n { sum &+= one.read(Scratch.value) }
            sink &+= sum
        } reference: {
            sink &+= cbench_read32_loop(pointer, UInt64(n))
        }
        let write = compare {
            for i in 0..<n { one.write(Scratch.value, UInt32(truncatingIfNeeded: i)) }
        } reference: {
            cbench_write32_loop(pointer, UInt64(n))
        }
        let scatteredRead = compare {
            var sum: UInt32 = 0
            for _ in 0..<passes {
                sum &+= eight.read(Scattered.control)
                sum &+= eight.read(Scattered.status)
                sum &+= eight.read(Scattered.mask)
                sum &+= eight.read(Scattered.head)
                sum &+= eight.read(Scattered.tail)
                sum &+= eight.read(Scattered.doorbell)
                sum &+= eight.read(Scattered.acknowledge)
                sum &+= eight.read(Scattered.counter)
            }
            sink &+= sum
        } reference: {
            sink &+= cbench_read32_scattered_loop(pointer, passes)
        }
        let scatteredWrite = compare {
            for i in 0..<passes {
                let v = UInt32(truncatingIfNeeded: i)
                eight.write(Scattered.control, v)
                eight.write(Scattered.status, v)
                eight.write(Scattered.mask, v)
                eight.write(Scattered.head, v)
                eight.write(Scattered.tail, v)
                eight.write(Scattered.doorbell, v)
                eight.write(Scattered.acknowledge, v)
                eight.write(Scattered.counter, v)
            }
        } reference: {
            cbench_write32_scattered_loop(pointer, passes)
        }
        benchmarkSink = sink
        let accesses = Double(n), scatteredAccesses = Double(passes * 8)
        let result = Result(
            iterations: n,
            read_ns: read.framework / accesses, write_ns: write.framework / accesses,
            c_read_ns: read.reference / accesses, c_write_ns: write.reference / accesses,
            read_ratio: read.ratio, write_ratio: write.ratio,
            scattered_read_ns: scatteredRead.framework / scatteredAccesses,
            scattered_write_ns: scatteredWrite.framework / scatteredAccesses,
            c_scattered_read_ns: scatteredRead.reference / scatteredAccesses,
            c_scattered_write_ns: scatteredWrite.reference / scatteredAccesses,
            scattered_read_ratio: scatteredRead.ratio, scattered_write_ratio: scatteredWrite.ratio,
            read_allocations: read.allocations, write_allocations: write.allocations,
            scattered_read_allocations: scatteredRead.allocations, scattered_write_allocations: scatteredWrite.allocations,
            allocations_not_counted: AllocationCounter.unavailableReason)
        let counted = [read, write, scatteredRead, scatteredWrite].compactMap(\.allocations)
        try printResult(
            result, json: json,
            lines: [
                "32-bit MMIO on a mapped BAR (\(n) accesses per round, best of \(rounds) alternating rounds)",
                "  one register, VFIOKit:      read \(fixed(result.read_ns)) ns/op, write \(fixed(result.write_ns)) ns/op",
                "  one register, C:            read \(fixed(result.c_read_ns)) ns/op, write \(fixed(result.c_write_ns)) ns/op",
                "  eight registers, VFIOKit:   read \(fixed(result.scattered_read_ns)) ns/op, write \(fixed(result.scattered_write_ns)) ns/op",
                "  eight registers, C:         read \(fixed(result.c_scattered_read_ns)) ns/op, write \(fixed(result.c_scattered_write_ns)) ns/op",
                "  ratio: read \(fixed(result.read_ratio)), write \(fixed(result.write_ratio)), "
                    + "scattered read \(fixed(result.scattered_read_ratio)), scattered write \(fixed(result.scattered_write_ratio)) (target ≤ 1.05)",
                allocationLine(
                    counted.count < 4
                        ? nil
                        : "read \(counted[0]), write \(counted[1]), "
                            + "scattered read \(counted[2]), scattered write \(counted[3]) in the timed loops (target 0)"),
            ])
    }

    /// The fastest VFIOKit and C rounds of one pattern, in nanoseconds, and the heap
    /// allocations on this thread over VFIOKit's rounds.
    struct Comparison {
        let framework: Double
        let reference: Double
        let allocations: Int?
        var ratio: Double { framework / max(reference, 1) }
    }

    /// Runs the two sides of a pattern in alternating rounds, so both see the same background load.
    private func compare(framework: () -> Void, reference: () -> Void) -> Comparison {
        var fastest = (framework: UInt64.max, reference: UInt64.max)
        var allocations: Int? = 0
        for _ in 0..<rounds {
            let counts = AllocationCounter.countIfAvailable(onThread: pthread_self()) {
                fastest.framework = min(fastest.framework, timed(framework))
            }
            allocations = counts.flatMap { c in allocations.map { $0 + c.onThread } }
            fastest.reference = min(fastest.reference, timed(reference))
        }
        return Comparison(framework: Double(fastest.framework), reference: Double(fastest.reference), allocations: allocations)
    }

    /// How long `body` takes, in nanoseconds. Allocates nothing itself.
    private func timed(_ body: () -> Void) -> UInt64 {
        let start = cbench_now_ns()
        body()
        return cbench_now_ns() - start
    }
}

/// Where the read loops' sums end up, so the optimizer must compute them, as the C loop does.
nonisolated(unsafe) var benchmarkSink: UInt32 = 0
