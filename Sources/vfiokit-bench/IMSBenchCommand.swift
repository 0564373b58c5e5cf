import ArgumentParser
import CLIOutput
import CBenchReference
import Foundation
import Synchronization
import VFIODrivers
import VFIOKit
import VFIOMock

/// IMS at scale on the simulated IMS device through the mock kernel: programming a million
/// slots, the demux's cost as the domain grows, and doorbell-to-handler latency of an IMS slot
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
        let program_seconds: Double
        /// Resident growth from before the domain was made to after the slots were programmed,
        /// per slot: slot table and status area (4 B/slot), not the device's contexts.
        let bytes_per_slot: Double
        let dispatch_small_slots: Int
        let dispatch_small_ns: UInt64
        let dispatch_large_ns: UInt64
        let dispatch_ratio: Double
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
        // Programming is timed on three fresh domains and the median reported, so one preempted
        // run does not decide the figure. The first domain, made in a fresh process, gives the
        // memory figure and stays for the other figures.
        let large = try IMSBenchRig(slots: slots)
        defer { large.close() }
        let (firstSeconds, bytes) = try large.programAll()
        var programTimes = [firstSeconds]
        for _ in 0..<2 {
            let rig = try IMSBenchRig(slots: slots)
            defer { rig.close() }
            programTimes.append(try rig.programAll().seconds)
        }
        let seconds = programTimes.sorted()[1]
        let smallRig = try IMSBenchRig(slots: small)
        defer { smallRig.close() }
        _ = try smallRig.programAll()
        let dispatch = IMSBenchRig.dispatchCosts([large, smallRig], samples: samples)
        let (largeDispatch, smallDispatch) = (dispatch[0], dispatch[1])
        let (imsLatency, msixLatency) = try large.latencies(samples: samples)
        let allocations = try AllocationCounter.countIfAvailable(onThread: large.loopThread) {
            for _ in 0..<samples { _ = try large.fireIMS() }
        }
        let (smallIMSLatency, smallMSIXLatency) = try smallRig.latencies(samples: samples)
        let ims = percentiles(imsLatency), msix = percentiles(msixLatency)
        let smallIMS = percentiles(smallIMSLatency), smallMSIX = percentiles(smallMSIXLatency)
        let result = Result(
            slots: slots, program_seconds: seconds, bytes_per_slot: Double(bytes) / Double(slots),
            dispatch_small_slots: small, dispatch_small_ns: smallDispatch, dispatch_large_ns: largeDispatch,
            dispatch_ratio: Double(largeDispatch) / Double(max(smallDispatch, 1)),
            ims_p50_ns: ims.p50, ims_p99_ns: ims.p99, msix_p50_ns: msix.p50, msix_p99_ns: msix.p99,
            latency_p50_ratio: Double(ims.p50) / Double(max(msix.p50, 1)), latency_p99_ratio: Double(ims.p99) / Double(max(msix.p99, 1)),
            latency_domain_slots: slots, small_ims_p50_ns: smallIMS.p50, small_msix_p50_ns: smallMSIX.p50,
            small_latency_p50_ratio: Double(smallIMS.p50) / Double(max(smallMSIX.p50, 1)), dispatches: samples, dispatch_allocations: allocations?.onThread,
            dispatch_allocations_total: allocations?.total, allocations_not_counted: AllocationCounter.unavailableReason,
            cpu: cpuModel())
        try printResult(result, json: json, lines: [
            "IMS on the simulated IMS device, queue-context store, mock kernel (\(result.cpu))",
            "  allocate + program + unmask \(slots) slots: \(fixed(seconds)) s, median of 3 (target ≤ 0.25)",
            "  framework memory: \(fixed(result.bytes_per_slot)) B/slot, slot table and status area (target ≤ 48)",
            "  dispatch of 1 pending slot: \(smallDispatch) ns among \(small), \(largeDispatch) ns among \(slots); ratio \(fixed(result.dispatch_ratio)) (target ≤ 1.5)",
            "  doorbell to handler, \(slots)-slot domain: IMS slot p50 \(ims.p50) ns p99 \(ims.p99) ns; MSI-X vector p50 \(msix.p50) ns p99 \(msix.p99) ns",
            "  ratio: p50 \(fixed(result.latency_p50_ratio)), p99 \(fixed(result.latency_p99_ratio)) (target ≤ 1.2)",
            "  doorbell to handler, \(small)-slot domain: IMS p50 \(smallIMS.p50) ns, MSI-X p50 \(smallMSIX.p50) ns; ratio \(fixed(result.small_latency_p50_ratio))",
            allocationLine(allocations.map {
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
