import ArgumentParser
import PCI
import VFIOHost

/// `vfiokit info ADDRESS`: one device's BARs, capabilities, IOMMU group and VFIO view.
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show a device's BARs, capabilities, IOMMU group members and, on vfio-pci, its VFIO regions and IRQs.")

    @Argument(help: "The device, as 0000:03:00.0 or 03:00.0.", transform: { try PCIAddress(parsing: $0) })
    var address: PCIAddress

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let report = try DeviceReport.read(address, discovery: PCIDiscovery(), names: PCINameDatabase(), vfio: FrameworkVFIOInspector())
        if json {
            print(jsonText(report))
            return
        }
        let d = report.device
        print(
            "\(d.address)  \(d.className) [\(d.class.dropFirst(2).prefix(4))]: \(d.vendorName) \(d.deviceName) [\(d.vendor.dropFirst(2)):\(d.device.dropFirst(2))] (rev \(report.revision.dropFirst(2)))"
        )
        print("  subsystem: \(report.subsystemVendor.dropFirst(2)):\(report.subsystemDevice.dropFirst(2))")
        print(
            "  driver: \(d.driver ?? "none")    driver_override: \(report.driverOverride ?? "none")    NUMA node: \(d.numaNode.map(String.init) ?? "-")"
        )
        print("  BARs:")
        if report.bars.isEmpty { print("    none") }
        for bar in report.bars {
            let name = bar.kind == .rom ? "ROM  " : "BAR \(bar.index)"
            let where_ = bar.start == 0 ? "unassigned" : "at 0x\(String(bar.start, radix: 16))"
            print("    \(name)  \(bar.kind.rawValue)\(bar.prefetchable ? ", prefetchable" : "")  \(formatByteSize(bar.size)) \(where_)")
        }
        let privilege = report.configBytesRead <= 64 ? "; run as root to read past the standard header" : ""
        print("  Capabilities (\(report.configBytesRead) bytes of config space read\(privilege)):")
        if report.capabilities.isEmpty { print("    none found") }
        for cap in report.capabilities {
            let version = cap.version.map { " v\($0)" } ?? ""
            let space = cap.space == .extended ? "ext " : ""
            print("    [\("0x" + String(cap.offset, radix: 16))] \(space)\(cap.name) (id 0x\(String(cap.id, radix: 16)))\(version)")
            for line in cap.details { print("        \(line)") }
        }
        if let group = report.iommuGroup {
            let node = group.vfioNode.map { " \($0)" } ?? ""
            print("  IOMMU group \(group.number)\(node)\(group.noIOMMU ? " (NO-IOMMU MODE: DMA NOT ISOLATED)" : ""):")
            for member in group.members { print("    \(member.address)  \(member.driver ?? "no driver")") }
        } else {
            print("  IOMMU group: none (no IOMMU, or no-IOMMU mode before vfio-pci binds)")
        }
        switch report.vfio {
        case nil: break
        case let .failed(reason)?: print("  VFIO: cannot open the device: \(reason)")
        case let .inspected(summary)?:
            print("  VFIO regions:")
            for r in summary.regions {
                print(
                    "    \(r.index) \(r.name)  \(formatByteSize(r.size)) at offset 0x\(String(r.offset, radix: 16))  [\(r.flags.joined(separator: ", "))]"
                )
                for cap in r.capabilities { print("        \(cap)") }
            }
            print("  VFIO IRQs:")
            for irq in summary.irqs { print("    \(irq.index) \(irq.name)  count \(irq.count)  [\(irq.flags.joined(separator: ", "))]") }
        }
    }
}
