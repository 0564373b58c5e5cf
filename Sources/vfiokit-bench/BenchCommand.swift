import ArgumentParser
import CLIOutput
import Foundation
import PCI
import VFIOKit
import VFIOMock

/// `vfiokit-bench mmio|irq|ims|nvme|export [--json]`: the framework's hot paths against plain C in one run.
@main
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vfiokit-bench",
        abstract: "Measure MMIO access and interrupt dispatch against a C reference in the same run.",
        subcommands: [MMIOBenchCommand.self, IRQBenchCommand.self, IMSBenchCommand.self, NVMeBenchCommand.self, ExportBenchCommand.self])
}

/// The median and the 99th percentile of `values`.
func percentiles(_ values: [UInt64]) -> (p50: UInt64, p99: UInt64) {
    let sorted = values.sorted()
    return (sorted[sorted.count / 2], sorted[min(sorted.count - 1, sorted.count * 99 / 100)])
}

/// The text line for allocation counts, or for why they were not counted (`counted` is nil).
func allocationLine(_ counted: String?) -> String {
    "  heap allocations: " + (counted ?? "not counted: \(AllocationCounter.unavailableReason ?? "unknown")")
}

/// Opens `device` plugged into a fresh mock kernel, through the legacy backend, with the bus the
/// device drives; its eventfds and BAR memory are the host's, so the hot paths run as they do
/// on hardware.
func openSimulated(_ device: any SimulatedDevice) throws -> (device: PCIDevice, bus: DeviceBus) {
    let kernel = MockKernel()
    let address = try PCIAddress(domain: 0, bus: 0, device: 4, function: 0)
    let bus = try kernel.plug(device, at: address)
    return (try PCIDevice.open(address, backend: .legacy, system: kernel), bus)
}
