import PCI
import VFIOKit

/// Reads a vfio-pci device's regions and IRQ indices through VFIOKit, on whichever backend
/// `.auto` picks, and closes the device again before returning.
public struct FrameworkVFIOInspector: VFIODeviceInspector {
    private let system: any SystemCalls

    public init(system: any SystemCalls = HostSystemCalls.shared) {
        self.system = system
    }

    public func inspect(_ address: PCIAddress) throws -> VFIODeviceSummary {
        let device = try PCIDevice.open(address, system: system)
        defer { device.close() }
        var regions: [VFIODeviceSummary.Region] = []
        for index in 0..<device.regionCount {
            guard let info = try? device.regionInfo(index) else { continue }
            regions.append(
                .init(
                    index: index, name: Self.regionName(index), size: UInt64(info.size), offset: UInt64(info.offset),
                    flags: Self.names(info.flags.rawValue, ["read", "write", "mmap", "caps"]),
                    capabilities: info.capabilities.map(\.description)))
        }
        let irqs = try IRQIndex.allCases.map { index in
            let info = try device.interrupts.info(index)
            return VFIODeviceSummary.IRQ(
                index: index.rawValue, name: index.description, count: UInt32(info.count),
                flags: Self.names(info.flags.rawValue, ["eventfd", "maskable", "automasked", "noresize"]))
        }
        return VFIODeviceSummary(regions: regions, irqs: irqs)
    }

    private static func regionName(_ index: Int) -> String {
        switch index {
        case 0...5: "BAR\(index)"
        case 6: "ROM"
        case 7: "config"
        case 8: "VGA"
        default: "device-specific \(index)"
        }
    }

    /// The names of the set bits, bit 0 first.
    private static func names(_ bits: UInt32, _ names: [String]) -> [String] {
        names.enumerated().filter { bits & 1 << $0.offset != 0 }.map(\.element)
    }
}
