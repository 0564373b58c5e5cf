import ArgumentParser
import CBenchReference
import Foundation
import Synchronization
import VFIOKit

/// Interrupt dispatch latency: eventfd signalled to handler run, through VFIOKit's event loop
/// and through a C epoll loop, each signalled the same way, in the same run.
struct IRQBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "irq", abstract: "Interrupt dispatch latency, p50 and p99, against C epoll.")

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
    }

    func run() throws {
        guard samples >= 100 else { throw ValidationError("--samples must be at least 100") }
        let framework = try frameworkLatencies()
        var reference = [UInt64](repeating: 0, count: samples)
        let rc = cbench_irq_reference(UInt64(samples), &reference)
        guard rc == 0 else { throw ValidationError("the C reference failed: errno \(-rc)") }
        let (p50, p99) = percentiles(framework)
        let (cp50, cp99) = percentiles(reference)
        let result = Result(
            samples: samples, p50_ns: p50, p99_ns: p99, c_p50_ns: cp50, c_p99_ns: cp99,
            p50_ratio: Double(p50) / Double(max(cp50, 1)), p99_ratio: Double(p99) / Double(max(cp99, 1)))
        try printResult(result, json: json, lines: [
            "interrupt dispatch, eventfd signalled to handler run (\(samples) samples each)",
            "  VFIOKit event loop: p50 \(p50) ns, p99 \(p99) ns",
            "  C epoll reference:  p50 \(cp50) ns, p99 \(cp99) ns",
            "  ratio: p50 \(fixed(result.p50_ratio)), p99 \(fixed(result.p99_ratio)) (target ≤ 1.2)",
        ])
    }

    /// Signals an MSI vector's eventfd of a simulated device as the kernel would, and waits for
    /// the event loop's handler to stamp it.
    private func frameworkLatencies() throws -> [UInt64] {
        let simulation = try SimulatedEdu(backend: .legacy)
        let device = try PCIDevice.open(simulation.address, backend: .legacy, system: simulation.kernel)
        defer { device.close() }
        guard let source = try device.interrupts.enable(.msi).first else { throw ValidationError("the simulated device has no MSI") }
        let loop = try EventLoop(system: simulation.kernel)
        let handled = Atomic<UInt64>(0)
        let stamp = Atomic<UInt64>(0)
        try loop.register(source) { _ in
            stamp.store(cbench_now_ns(), ordering: .relaxed)
            handled.add(1, ordering: .releasing)
        }
        try loop.start()
        defer { loop.stop() }
        var latencies = [UInt64](repeating: 0, count: samples)
        var one: UInt64 = 1
        for i in 0..<samples {
            let start = cbench_now_ns()
            guard write(source.fd.rawValue, &one, 8) == 8 else { throw ValidationError("eventfd write failed: errno \(errno)") }
            while handled.load(ordering: .acquiring) <= UInt64(i) {}
            latencies[i] = stamp.load(ordering: .relaxed) &- start
        }
        return latencies
    }

    private func percentiles(_ values: [UInt64]) -> (UInt64, UInt64) {
        let sorted = values.sorted()
        return (sorted[sorted.count / 2], sorted[min(sorted.count - 1, sorted.count * 99 / 100)])
    }
}
