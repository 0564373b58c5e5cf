import PCI
import VFIOKit

/// Everything `vfiokit info` shows about one device.
public struct DeviceReport: Encodable, Sendable {
    public struct GroupMember: Encodable, Equatable, Sendable {
        public let address: String
        @NullWhenAbsent public internal(set) var driver: String?
    }

    public struct IOMMUGroup: Encodable, Equatable, Sendable {
        public let number: Int
        /// `/dev/vfio/12`, or `/dev/vfio/noiommu-12` in no-IOMMU mode; nil while no VFIO
        /// driver has created the node.
        @NullWhenAbsent public internal(set) var vfioNode: String?
        public let noIOMMU: Bool
        public let members: [GroupMember]
    }

    /// What VFIO said, for a device on vfio-pci.
    public enum VFIOSection: Encodable, Sendable {
        case inspected(VFIODeviceSummary)
        /// The device could not be opened; the reason says why.
        case failed(String)

        public func encode(to encoder: any Encoder) throws {
            switch self {
            case let .inspected(summary): try summary.encode(to: encoder)
            case let .failed(reason):
                var container = encoder.container(keyedBy: ErrorKey.self)
                try container.encode(reason, forKey: .error)
            }
        }

        private enum ErrorKey: CodingKey { case error }
    }

    public let device: PCIDeviceListing
    public let subsystemVendor: String
    public let subsystemDevice: String
    public let revision: String
    @NullWhenAbsent public internal(set) var driverOverride: String?
    public let bars: [PCIBAR]
    /// How much config space this process could read (64 for non-root, else 256 or 4096).
    public let configBytesRead: Int
    public let capabilities: [CapabilitySummary]
    @NullWhenAbsent public internal(set) var iommuGroup: IOMMUGroup?
    /// nil unless the device is bound to a VFIO driver and an inspector was given.
    @NullWhenAbsent public internal(set) var vfio: VFIOSection?

    /// Reads the report of `address`. `capabilities` decodes config space (by default with
    /// the PCI module's walk and decoders); `vfio`, when given, is asked about devices on a VFIO driver.
    public static func read(
        _ address: PCIAddress, discovery: PCIDiscovery, names: PCINameDatabase,
        capabilities lister: (any CapabilityLister)? = nil, vfio inspector: (any VFIODeviceInspector)? = nil
    ) throws(HostAccessError) -> DeviceReport {
        let device = try discovery.device(address)
        let config = try discovery.tree.readBytes(SysfsLayout.device(address, .config), limit: 4096)
        var group: IOMMUGroup?
        if let number = device.iommuGroup {
            var members: [GroupMember] = []
            for member in try discovery.members(ofGroup: number) {
                members.append(GroupMember(address: member.description, driver: try discovery.driver(of: member)?.rawValue))
            }
            let tree = discovery.tree
            let noIOMMU = tree.exists(SysfsLayout.vfioGroupNode(number, noIOMMU: true))
            let node = SysfsLayout.vfioGroupNode(number, noIOMMU: noIOMMU)
            group = IOMMUGroup(number: number, vfioNode: tree.exists(node) ? "/" + node : nil, noIOMMU: noIOMMU, members: members)
        }
        var vfio: VFIOSection?
        if let inspector, device.driver?.isVFIO == true {
            do { vfio = .inspected(try inspector.inspect(address)) } catch { vfio = .failed("\(error)") }
        }
        return DeviceReport(
            device: PCIDeviceListing(device, names: names),
            subsystemVendor: sysfsHex(device.subsystemVendorID, digits: 4),
            subsystemDevice: sysfsHex(device.subsystemDeviceID, digits: 4),
            revision: sysfsHex(device.revision, digits: 2),
            driverOverride: device.driverOverride?.rawValue,
            bars: try discovery.bars(of: address),
            configBytesRead: config.count,
            capabilities: (lister ?? DecodingCapabilityLister()).capabilities(in: config),
            iommuGroup: group,
            vfio: vfio)
    }
}
