import ArgumentParser
import CLIOutput
import CBenchReference
import Foundation
import Synchronization
import VFIODrivers
import VFIOKit
import VFIOMock

/// IMS at scale on the simulated IMS device through the mock kernel: programming a million
/// slots (and the most a DSA-layout table holds), the demux's cost over random slots as the domain grows, and doorbell-to-handler latency of an IMS slot
/// against a plain MSI-X vector on the same event loop, in the same run.
struct IMSBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ims", abstract: "IMS: program a million slots, demux cost by domain size, latency against MSI-X.")

    @Option(help: "Slots to allocate, program and unmask.")
    var slots = 1_000_000

    @Option(help: "Dispatches and interrupts to time for each figure.")
    var samples = 100_000

    @Flag(help: "Print JSON.")
    var json = false

    struct Result: Encodable {
        let slots: Int
        /// Allocate, program and unmask every slot, one distinct handler each, in one batch:
        /// the queue-context store (one batched commit), median of three fresh domains.
        let program_seconds: Double
        /// The same on the DSA-layout table in the trapped BAR (one access per field), for the
        /// most slots it holds, `dsa_table_slots`; median of three.
        let dsa_table_program_seconds: Double
        let dsa_table_slots: Int
        /// Resident growth from before the domain was made to after the slots were programmed,
        /// per slot: slot table, status area (4 B/slot) and one handler per slot, as
        /// `allocate { }` makes; not the device's contexts. Measured on the process's first domain.
        let bytes_per_slot: Double
        /// The same for a domain whose slots all share one handler, made second.
        let bytes_per_slot_shared_handler: Double
        /// Dispatch of one pending slot, the slot uniformly random (the same sequence for both
        /// domains): hot (passes back to back) and cold (the core's L1 and L2 evicted first).
        let dispatch_small_slots: Int
        let dispatch_hot_small_ns: UInt64
        let dispatch_hot_large_ns: UInt64
        let dispatch_hot_ratio: Double
        let dispatch_cold_small_ns: UInt64
        let dispatch_cold_large_ns: UInt64
        let dispatch_cold_ratio: Double
        let dispatch_cold_samples: Int
        let eviction_bytes: Int
        let ims_p50_ns: UInt64
        let ims_p99_ns: UInt64
        let msix_p50_ns: UInt64
        let msix_p99_ns: UInt64
        let latency_p50_ratio: Double
        let latency_p99_ratio: Double
        let latency_domain_slots: Int
        /// The same latencies with a domain of `dispatch_small_slots` slots.
        let small_ims_p50_ns: UInt64
        let small_msix_p50_ns: UInt64
        let small_latency_p50_ratio: Double
        let dispatches: Int
        let dispatch_allocations: Int?
        let dispatch_allocations_total: Int?
        let allocations_not_counted: String?
        let cpu: String
    }

    func run() throws {
        guard slots >= 1_000, samples >= 100 else { throw ValidationError("--slots must be at least 1000 and --samples at least 100") }
        AllocationCounter.preloadIfNotCounting()
        let small = 1_000
        // The first domain, made in a fresh process, gives the memory figure (one handler per
        // slot) and stays for the other figures; a second, with one shared handler, stays too,
        // so that neither is made in memory the other freed. Programming is timed on three
        // fresh domains and the median reported, so one preempted run does not decide it.
        let large = try IMSBenchRig(slots: slots)
        defer { large.close() }
        let (firstSeconds, bytes) = try large.programAll(.distinct)
        let sharedRig = try IMSBenchRig(slots: slots)
        let sharedBytes = try sharedRig.programAll(.shared).frameworkBytes
        sharedRig.close()
        var programTimes = [firstSeconds]
        for _ in 0..<2 {
            let rig = try IMSBenchRig(slots: slots)
            defer { rig.close() }
            programTimes.append(try rig.programAll(.distinct).seconds)
        }
        let seconds = programTimes.sorted()[1]
        let dsaSlots = min(slots, IMSBenchRig.dsaTableSlots)
        let dsaSeconds = try (0..<3).map { _ in
            let rig = try IMSBenchRig(slots: dsaSlots, store: .dsaTable)
            defer { rig.close() }
            return try rig.programAll(.distinct).seconds
        }.sorted()[1]
        let smallRig = try IMSBenchRig(slots: small)
        defer { smallRig.close() }
        _ = try smallRig.programAll(.distinct)
        var random = SystemRandomNumberGenerator()
        let picks = (0..<samples).map { _ in random.next() as UInt64 }
        let hot = IMSBenchRig.dispatchCosts([large, smallRig], picks: picks)
        let evictor = CacheEvictor()
        let coldPicks = Array(picks.prefix(max(100, samples / 10)))
        let cold = IMSBenchRig.dispatchCosts([large, smallRig], picks: coldPicks, evictor: evictor)
        let (imsLatency, msixLatency) = try large.latencies(samples: samples)
        let allocations = try AllocationCounter.countIfAvailable(onThread: large.loopThread) {
            for _ in 0..<samples { _ = try large.fireIMS() }
        }
        let (smallIMSLatency, smallMSIXLatency) = try smallRig.latencies(samples: samples)
        let ims = percentiles(imsLatency), msix = percentiles(msixLatency)
        let smallIMS = percentiles(smallIMSLatency), smallMSIX = percentiles(smallMSIXLatency)
        let result = Result(
            slots: slots, program_seconds: seconds, dsa_table_program_seconds: dsaSeconds, dsa_table_slots: dsaSlots,
            bytes_per_slot: Double(bytes) / Double(slots), bytes_per_slot_shared_handler: Double(sharedBytes) / Double(slots),
            dispatch_small_slots: small, dispatch_hot_small_ns: hot[1], dispatch_hot_large_ns: hot[0],
            dispatch_hot_ratio: Double(hot[0]) / Double(max(hot[1], 1)),
            dispatch_cold_small_ns: cold[1], dispatch_cold_large_ns: cold[0],
            dispatch_cold_ratio: Double(cold[0]) / Double(max(cold[1], 1)),
            dispatch_cold_samples: coldPicks.count, eviction_bytes: evictor.bytes,
            ims_p50_ns: ims.p50, ims_p99_ns: ims.p99, msix_p50_ns: msix.p50, msix_p99_ns: msix.p99,
            latency_p50_ratio: Double(ims.p50) / Double(max(msix.p50, 1)), latency_p99_ratio: Double(ims.p99) / Double(max(msix.p99, 1)),
            latency_domain_slots: slots, small_ims_p50_ns: smallIMS.p50, small_msix_p50_ns: smallMSIX.p50,
            small_latency_p50_ratio: Double(smallIMS.p50) / Double(max(smallMSIX.p50, 1)), dispatches: samples,
            dispatch_allocations: allocations?.onThread,
            dispatch_allocations_total: allocations?.total, allocations_not_counted: AllocationCounter.unavailableReason,
            cpu: cpuModel())
        try printResult(
            result, json: json,
            lines: [
                "IMS on the simulated IMS device, mock kernel (\(result.cpu))",
                "  allocate + program + unmask \(slots) slots, a handler each, queue-context store (one batched commit): \(fixed(seconds)) s, median of 3 (target ≤ 0.25)",
                "  the same on the DSA-layout table (trapped BAR, one access per field), \(dsaSlots) slots (its most is \(IMSBenchRig.dsaTableSlots)): \(fixed(dsaSeconds)) s, median of 3",
                "  framework memory: \(fixed(result.bytes_per_slot)) B/slot with a handler per slot (target ≤ 48); \(fixed(result.bytes_per_slot_shared_handler)) B/slot with one shared handler",
                "  dispatch of 1 pending slot, uniformly random slots, hot: \(hot[1]) ns among \(small), \(hot[0]) ns among \(slots); ratio \(fixed(result.dispatch_hot_ratio)) (target ≤ 1.5)",
                "  the same, cold (L1 and L2 evicted, \(evictor.bytes) B read, before each; \(coldPicks.count) samples): \(cold[1]) ns among \(small), \(cold[0]) ns among \(slots); ratio \(fixed(result.dispatch_cold_ratio))",
                "  doorbell to handler, \(slots)-slot domain: IMS slot p50 \(ims.p50) ns p99 \(ims.p99) ns; MSI-X vector p50 \(msix.p50) ns p99 \(msix.p99) ns",
                "  ratio: p50 \(fixed(result.latency_p50_ratio)), p99 \(fixed(result.latency_p99_ratio)) (target ≤ 1.2)",
                "  doorbell to handler, \(small)-slot domain: IMS p50 \(smallIMS.p50) ns, MSI-X p50 \(smallMSIX.p50) ns; ratio \(fixed(result.small_latency_p50_ratio))",
                allocationLine(
                    allocations.map {
                        "\($0.onThread) on the event loop's thread, \($0.total) in the process, over \(samples) IMS dispatches (target 0)"
                    }),
            ])
    }

    private func cpuModel() -> String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
            let colon = line.firstIndex(of: ":")
        else { return "unknown CPU" }
        return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
}
