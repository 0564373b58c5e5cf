import ArgumentParser
import Foundation
import PCI
import VFIOConformance
import VFIOKit
import VFIOMock

/// `vfiokit conformance`: runs the conformance scenarios against this kernel and against a
/// mock set up like it, and prints every difference side by side (Tests/VM's proof that the
/// mock equals the kernel). Hidden: it drives the devices it is given with raw ioctls.
struct ConformanceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conformance",
        abstract: "Run the VFIO conformance scenarios on this kernel and on the mock, and compare.",
        shouldDisplay: false)

    @Option(help: "A QEMU edu device bound to vfio-pci.", transform: { try PCIAddress(parsing: $0) })
    var edu: PCIAddress

    @Option(help: "A device with MSI-X bound to vfio-pci (used read-only).", transform: { try PCIAddress(parsing: $0) })
    var msix: PCIAddress?

    @Option(help: "A vfio-pci function whose group a host driver also holds.", transform: { try PCIAddress(parsing: $0) })
    var nonViable: PCIAddress?

    @Option(help: "The kernel the mock plays: 6.1 or 6.12 (default: this kernel's release).")
    var kernel: String?

    @Flag(help: "Run on the mock only and print its records.")
    var mockOnly = false

    @Flag(help: "Also print the records as one JSON array on a line starting 'records: '.")
    var json = false

    /// The start of BAR 0 of `address` as sysfs's `resource` file gives it (its first line's
    /// first field); nil where the device or the file is absent, as on a machine with no guest.
    private func barBase(of address: PCIAddress) -> UInt64? {
        guard let text = try? HostSystemCalls.shared.readText(SysfsLayout.absolute(SysfsLayout.device(address, .resource))),
            let first = text.split(separator: "\n").first?.split(separator: " ").first,
            let base = UInt64(first.dropFirst(2), radix: 16), base != 0
        else { return nil }
        return base
    }

    func run() throws {
        let target = ConformanceTarget(edu: edu, msix: msix, nonViable: nonViable)
        let release = kernel ?? (try? HostSystemCalls.shared.readText("/proc/sys/kernel/osrelease")) ?? ""
        guard let guestKernel = GuestKernel(release: release) else {
            throw ValidationError("no mock configuration for kernel '\(release)'; pass --kernel 6.1 or 6.12")
        }
        var configuration = guestKernel.configuration
        // Where edu's BAR 0 sits is this machine's fact, not the kernel's ABI: the firmware
        // places it at boot, and the kernel moves it when an earlier check removes and rescans
        // the device. The mock takes it from the guest's sysfs when the guest has the device.
        if let base = barBase(of: target.edu) { configuration.firmwareBARBase32 = base }
        let mock = try MockKernel.conformanceGuest(target, configuration: configuration)
        let mockModes = Conformance.availableModes(mock)
        let scenarioCount = Conformance.scenarios.filter { $0.needs(target) }.count
        let mockRecords = Conformance.run(on: mock, target: target, modes: mockModes)
        if mockOnly {
            for r in mockRecords { print(r.text) }
            if json { try printJSON(mockRecords) }
            print(
                Conformance.summary(
                    scenarios: scenarioCount, modes: mockModes.count, kernels: 1, records: mockRecords.count,
                    differences: 0, known: 0))
            return
        }
        let host = HostSystemCalls.shared
        let modes = Conformance.availableModes(host)
        var differences: [String] = []
        if modes != mockModes {
            differences.append("modes: kernel \(modes.map(\.name)) | mock \(mockModes.map(\.name))")
        }
        let kernelRecords = Conformance.run(on: host, target: target, modes: modes)
        let comparison = conformanceComparison(kernel: kernelRecords, mock: mockRecords)
        differences += comparison.differences
        for d in comparison.known + differences { print(d) }
        if json { try printJSON(kernelRecords) }
        print(
            Conformance.summary(
                scenarios: scenarioCount, modes: modes.count, kernels: 1, records: comparison.recordsCompared,
                differences: differences.count, known: comparison.known.count))
        if !differences.isEmpty { throw ExitCode.failure }
    }

    private func printJSON(_ records: [ConformanceRecord]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        print("records: " + String(decoding: try encoder.encode(records), as: UTF8.self))
    }
}
