import ArgumentParser
import VFIOHost

/// `vfiokit list`: every PCI device on the host, lspci-style, or as JSON.
struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the host's PCI devices with their driver, IOMMU group and NUMA node.",
        discussion: """
            IDs and class are printed exactly as sysfs shows them; names come from pci.ids through libpci, \
            as lspci shows them. A device without an IOMMU group (no IOMMU) shows "-".
            """)

    @Flag(
        help: "Print JSON: an array of {address, class, className, vendor, vendorName, device, deviceName, driver, iommuGroup, numaNode}.")
    var json = false

    func run() throws {
        let listing = try PCIDeviceListing.all(PCIDiscovery(), names: PCINameDatabase())
        if json {
            print(jsonText(listing))
            return
        }
        let rows = listing.map { entry in
            [
                entry.address, String(entry.class.dropFirst(2).prefix(4)),
                "\(entry.vendor.dropFirst(2)):\(entry.device.dropFirst(2))", entry.driver ?? "-",
                entry.iommuGroup.map(String.init) ?? "-", entry.numaNode.map(String.init) ?? "-",
                "\(entry.className): \(entry.vendorName) \(entry.deviceName)",
            ]
        }
        let header = ["ADDRESS", "CLASS", "ID", "DRIVER", "GROUP", "NUMA", "DESCRIPTION"]
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        for row in [header] + rows {
            let padded = row.indices.map { $0 == row.count - 1 ? row[$0] : row[$0].padding(to: widths[$0]) }
            print(padded.joined(separator: "  "))
        }
    }
}

extension String {
    /// The string followed by spaces up to `width` characters.
    func padding(to width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}
