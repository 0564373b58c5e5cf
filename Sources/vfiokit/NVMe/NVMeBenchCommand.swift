import ArgumentParser
import CLIOutput
import Foundation
import Synchronization
import VFIODrivers
import NVMeWorkloads
import VFIOKit

/// `vfiokit nvme bench ADDRESS [--workload …] [--block-size …] [--queue-depth …] [--queues …]
/// [--seconds …] [--poll] [--json]`: IOPS, and with --poll the polling thread's CPU time per I/O.
/// Heap allocations per I/O are counted by `vfiokit-bench nvme`, which carries the interposer.
struct NVMeBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure IOPS; with --poll also the polling thread's CPU time per I/O.",
        discussion: """
            With --poll each queue pair is polled by its own thread, which keeps --queue-depth commands in flight; \
            cpu_ns_per_io is queue 0's polling thread's whole CPU time (CLOCK_THREAD_CPUTIME_ID) over the run per I/O, \
            spin included: the figure set against SPDK's. Beside it, split: completion_to_doorbell_ns_per_io (from a \
            seen completion to the SQ doorbell's return) and sq_doorbell_ns_per_write (the SQ tail doorbell write \
            alone). On a real device the doorbell is an uncached MMIO write; with --simulated it is a store to shared \
            memory. Heap allocations are counted by \
            `vfiokit-bench nvme`, which carries the malloc interposer. With --simulated the controller runs on its own thread, so its work is not the driver's. \
            Without --poll, --queue-depth tasks per queue use the async API with MSI-X completions. Writes \
            overwrite the namespace.
            """)

    @OptionGroup var target: NVMeTarget
    @Option(help: "randread, randwrite, read or write.") var workload: String = "randread"
    @Option(help: "Bytes per I/O: a multiple of the namespace's block size.") var blockSize = 4096
    @Option(help: "Commands in flight per queue.") var queueDepth = 32
    @Option(help: "I/O queue pairs.") var queues = 1
    @Option(help: "How long to run.") var seconds = 5.0
    @Flag(help: "Poll completion queues instead of taking interrupts.") var poll = false
    @Option(help: "The namespace id.") var namespace: UInt32 = 1
    @Flag(help: "Print JSON.") var json = false

    struct Result: Encodable {
        let workload: String
        let block_size: Int
        let queue_depth: Int
        let queues: Int
        let polled: Bool
        let simulated: Bool
        let seconds: Double
        let ios: Int
        let iops: Double
        let mib_per_s: Double
        let errors: Int
        /// Polled only: queue 0's polling thread's CPU figures.
        let polled_figures: PolledFigures?
        /// What the SQ doorbell write is on this device.
        let doorbell: String
        let allocations_per_io: Double?
        let allocations_on_thread: Int?
        let allocations_total: Int?
        let allocations_not_counted: String?
    }

    func validate() throws {
        guard NVMeWorkload.Kind(rawValue: workload) != nil else {
            throw ValidationError(
                "unknown workload \"\(workload)\": use \(NVMeWorkload.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard queueDepth >= 1, queueDepth <= 4095 else { throw ValidationError("--queue-depth must be 1…4095") }
        guard queues >= 1, queues <= 64 else { throw ValidationError("--queues must be 1…64") }
        guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
        guard blockSize >= 512 else { throw ValidationError("--block-size must be at least 512") }
    }

    func run() async throws {
        var configuration = NVMeDriver.Configuration()
        configuration.queues = queues
        configuration.queueDepth = queueDepth + 1
        configuration.polled = poll
        let session = try target.open(configuration, controllerThread: true)
        defer { session.close() }
        let ns = try session.namespace(namespace)
        guard blockSize % ns.blockSize == 0, blockSize <= session.driver.maxTransfer else {
            throw ValidationError(
                "--block-size \(blockSize) must be a multiple of the namespace's \(ns.blockSize)-byte blocks and at most \(session.driver.maxTransfer) bytes (MDTS)"
            )
        }
        let capacity = session.driver.capabilities.maxQueueEntries - 1
        guard queueDepth <= capacity else { throw ValidationError("--queue-depth \(queueDepth) exceeds what CAP.MQES allows: \(capacity)") }
        guard session.driver.queueCount == queues else {
            throw ValidationError("the controller granted \(session.driver.queueCount) I/O queue pairs, not \(queues)")
        }
        let work = NVMeWorkload(
            kind: NVMeWorkload.Kind(rawValue: workload)!, namespaceID: ns.id, blocks: blockSize / ns.blockSize, bytes: blockSize,
            slots: ns.size / UInt64(blockSize / ns.blockSize))
        let control = BenchControl(seconds: seconds, quiet: seconds < 3)
        let started = monotonicNow()
        let result = poll ? try runPolled(session, work, control) : try await runAsync(session, work, control)
        let elapsed = Double(monotonicNow() - started) / 1e9
        try report(result, elapsed: elapsed)
    }

    struct Outcome {
        var ios = 0
        var errors = 0
        var firstError: String?
        var stats: PolledQueueStats?
    }

    private func runPolled(_ session: NVMeSession, _ work: NVMeWorkload, _ control: BenchControl) throws -> Outcome {
        // One buffer, a slice of queueDepth I/Os per queue.
        let buffer = try session.device.dma.allocate(queues * queueDepth * blockSize)
        let slices = (0..<queues).map {
            NVMeDataRange(deviceAddress: buffer.deviceAddress + UInt64($0 * queueDepth * blockSize), count: queueDepth * blockSize)
        }
        let driver = session.driver
        let others = Mutex<[Swift.Result<PolledQueueStats, NVMeError>]>([])
        let group = DispatchGroup()
        for q in 1..<queues {
            let slice = slices[q]
            group.enter()
            Thread {
                let r = Swift.Result { () throws(NVMeError) in
                    try runPolledQueue(
                        driver, queue: q, workload: work, depth: queueDepth, slice: slice, seed: UInt64(q) &* 0x9e37_79b9,
                        control: control)
                }
                others.withLock { $0.append(r) }
                group.leave()
            }.start()
        }
        control.start()
        var first: Swift.Result<PolledQueueStats, NVMeError> = .failure(.invalidArgument("not run"))
        first = Swift.Result { () throws(NVMeError) in
            try runPolledQueue(
                driver, queue: 0, workload: work, depth: queueDepth, slice: slices[0], seed: 0x2545_f491,
                control: control)
        }
        group.wait()
        control.waitForEnd()
        var outcome = Outcome()
        for r in [first] + others.withLock({ $0 }) {
            let stats = try r.get()
            outcome.ios += stats.ios
            outcome.errors += stats.failures
            outcome.firstError = outcome.firstError ?? stats.firstFailure
        }
        outcome.stats = try first.get()
        return outcome
    }

    private func runAsync(_ session: NVMeSession, _ work: NVMeWorkload, _ control: BenchControl) async throws -> Outcome {
        let tasks = queueDepth * queues
        let buffer = try session.device.dma.allocate(tasks * blockSize)
        let base = buffer.deviceAddress
        let driver = session.driver
        control.start()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<tasks {
                group.addTask {
                    var random = UInt64(t + 1) &* 0x9e37_79b9_7f4a_7c15
                    var n = t
                    while !control.stop.load(ordering: .relaxed) {
                        let lba = work.lba(n, &random)
                        let range = NVMeDataRange(deviceAddress: base + UInt64(t * work.bytes), count: work.bytes)
                        do {
                            if work.kind.writes {
                                try await driver.write(namespace: work.namespaceID, lba: lba, blocks: work.blocks, from: range)
                            } else {
                                try await driver.read(namespace: work.namespaceID, lba: lba, blocks: work.blocks, into: range)
                            }
                        } catch NVMeError.failed {
                            control.errors.add(1, ordering: .relaxed)
                        }
                        control.progress.add(1, ordering: .relaxed)
                        n += tasks
                    }
                }
            }
            try await group.waitForAll()
        }
        control.waitForEnd()
        return Outcome(ios: control.progress.load(ordering: .relaxed), errors: control.errors.load(ordering: .relaxed))
    }

    private func report(_ o: Outcome, elapsed: Double) throws {
        let iops = Double(o.ios) / elapsed
        let figures = o.stats.map(PolledFigures.init)
        let doorbell = target.simulated ? PolledFigures.simulatedDoorbell : PolledFigures.mmioDoorbell
        let result = Result(
            workload: workload, block_size: blockSize, queue_depth: queueDepth, queues: queues, polled: poll, simulated: target.simulated,
            seconds: elapsed, ios: o.ios, iops: iops, mib_per_s: iops * Double(blockSize) / 1_048_576, errors: o.errors,
            polled_figures: figures, doorbell: doorbell,
            allocations_per_io: nil, allocations_on_thread: nil, allocations_total: nil,
            allocations_not_counted:
                "vfiokit carries no malloc interposer, so allocations are not counted here: `vfiokit-bench nvme` counts them")
        var lines = [
            "nvme \(workload) \(blockSize / 1024 > 0 && blockSize % 1024 == 0 ? "\(blockSize / 1024)k" : "\(blockSize)b") qd\(queueDepth) x \(queues) queue(s), \(poll ? "polled" : "MSI-X")\(target.simulated ? ", simulated controller on its own thread" : ""):",
            "  \(o.ios) I/Os in \(fixed(elapsed)) s: \(Int(iops)) IOPS, \(fixed(result.mib_per_s)) MiB/s, \(o.errors) errors",
        ]
        if let e = o.firstError { lines.append("  first error: \(e)") }
        if let figures {
            lines += figures.lines(doorbell: doorbell)
            lines.append("  heap allocations: not counted: \(result.allocations_not_counted ?? "")")
        }
        try printResult(result, json: json, lines: lines)
        if o.errors > 0 { throw ExitCode.failure }
    }
}
