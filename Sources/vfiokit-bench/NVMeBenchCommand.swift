import ArgumentParser
import CLIOutput
import Foundation
import NVMeWorkloads
import VFIODrivers
import VFIOKit
import VFIOMock

/// The polled NVMe I/O path on the simulated controller (its own thread, memory-backed): the
/// polling thread's CPU time and heap allocations per I/O.
struct NVMeBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nvme",
        abstract: "The polled NVMe I/O path: polling-thread CPU and heap allocations per I/O on the simulated controller.")

    @Option(help: "randread, randwrite, read or write.") var workload: String = "randread"
    @Option(help: "Commands in flight.") var queueDepth = 32
    @Option(help: "How long to run.") var seconds = 2.0
    @Flag(help: "Print JSON.") var json = false

    struct Result: Encodable {
        let workload: String
        let queue_depth: Int
        let seconds: Double
        let ios: Int
        let errors: Int
        let polled_figures: PolledFigures
        /// Heap allocations on the polling thread in the polling loop (per I/O, and in all), and
        /// in the whole run there (set-up included) and in the process.
        let allocations_per_io: Double?
        let allocations_in_loop: Int?
        let allocations_on_thread: Int?
        let allocations_total: Int?
        let allocations_not_counted: String?
    }

    func run() throws {
        guard let kind = NVMeWorkload.Kind(rawValue: workload) else {
            throw ValidationError(
                "unknown workload \"\(workload)\": use \(NVMeWorkload.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard queueDepth >= 1, queueDepth <= 1023, seconds > 0 else {
            throw ValidationError("--queue-depth must be 1…1023 and --seconds positive")
        }
        AllocationCounter.preloadIfNotCounting()
        var options = NVMeController.Options()
        options.processing = .thread
        let controller = NVMeController(namespaces: [NVMeNamespace(blockCount: 64 << 11)], options: options)
        let (device, _) = try openSimulated(controller)
        let loop = try EventLoop()
        var configuration = NVMeDriver.Configuration()
        configuration.polled = true
        configuration.queueDepth = queueDepth + 1
        let driver = try NVMeDriver(device: device, loop: loop, configuration: configuration)
        defer {
            driver.shutDown()
            controller.stop()
            device.close()
        }
        try driver.bringUp()
        let namespace = driver.namespaces[0]
        let work = NVMeWorkload(
            kind: kind, namespaceID: namespace.id, blocks: 4096 / namespace.blockSize, bytes: 4096,
            slots: namespace.size / UInt64(4096 / namespace.blockSize))
        let buffer = try device.dma.allocate(queueDepth * 4096)
        let slice = NVMeDataRange(deviceAddress: buffer.deviceAddress, count: queueDepth * 4096)
        let control = BenchControl(seconds: seconds, quiet: true)
        var measured: PolledQueueStats?
        var loopStart = 0, inLoop = 0
        control.start()
        let allocations = try AllocationCounter.countIfAvailable(onThread: pthread_self()) {
            measured = try runPolledQueue(
                driver, queue: 0, workload: work, depth: queueDepth, slice: slice, seed: 0x2545_f491, control: control
            ) { starting in
                if starting { loopStart = AllocationCounter.watchedSoFar } else { inLoop = AllocationCounter.watchedSoFar - loopStart }
            }
        }
        control.waitForEnd()
        guard let stats = measured else { return }
        let result = Result(
            workload: workload, queue_depth: queueDepth, seconds: seconds, ios: stats.ios, errors: stats.failures,
            polled_figures: PolledFigures(stats),
            allocations_per_io: allocations.map { _ in stats.ios == 0 ? 0 : Double(inLoop) / Double(stats.ios) },
            allocations_in_loop: allocations.map { _ in inLoop },
            allocations_on_thread: allocations?.onThread, allocations_total: allocations?.total,
            allocations_not_counted: AllocationCounter.unavailableReason)
        try printResult(
            result, json: json,
            lines: [
                "nvme \(workload) 4k qd\(queueDepth), polled, simulated controller on its own thread (\(stats.ios) I/Os in \(fixed(seconds)) s, \(stats.failures) errors)"
            ] + result.polled_figures.lines(doorbell: PolledFigures.simulatedDoorbell) + [
                allocationLine(
                    allocations.map {
                        "\(inLoop) in the polling loop (\(fixed(result.allocations_per_io ?? 0)) per I/O, target 0); \($0.onThread) on the polling thread with set-up, \($0.total) in the process"
                    })
            ])
        if stats.failures > 0 { throw ExitCode.failure }
    }
}
