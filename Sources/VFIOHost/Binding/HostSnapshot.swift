import PCI
import VFIOKit

/// Everything the binding policy looks at, read from the host in one go so that the policy
/// itself is a pure function of it.
public struct HostSnapshot: Equatable, Sendable {
    /// The requested devices that exist, and every member of their IOMMU groups.
    public var devices: [PCIAddress: HostPCIDevice] = [:]
    /// How the host uses each device in ``devices``.
    public var usage: [PCIAddress: DeviceUsage] = [:]
    public var groupMembers: [Int: [PCIAddress]] = [:]
    /// Which of the drivers the policy asked about are loaded.
    public var loadedDrivers: Set<DriverName> = []
    public var noIOMMUMode = false
    public var memlock = MemlockLimit.unlimited
    /// The original drivers recorded by earlier binds.
    public var records: [PCIAddress: BindingRecord] = [:]

    public init() {}

    /// Reads the state of `addresses`, their groups, and whether `drivers` are loaded.
    public static func read(
        _ addresses: [PCIAddress], drivers: [DriverName], discovery: PCIDiscovery, records: [PCIAddress: BindingRecord],
        memlock: MemlockLimit
    ) throws(HostAccessError) -> HostSnapshot {
        var snapshot = HostSnapshot()
        snapshot.records = records
        snapshot.memlock = memlock
        snapshot.noIOMMUMode = try discovery.noIOMMUModeEnabled()
        snapshot.loadedDrivers = Set(drivers.filter(discovery.isLoaded))
        let scanner = DeviceUsageScanner(tree: discovery.tree)
        var pending = addresses
        while let address = pending.popLast() {
            guard snapshot.devices[address] == nil else { continue }
            let device: HostPCIDevice
            do { device = try discovery.device(address) } catch .noSuchDevice { continue }
            snapshot.devices[address] = device
            snapshot.usage[address] = try scanner.usage(of: address)
            if let group = device.iommuGroup, snapshot.groupMembers[group] == nil {
                let members = try discovery.members(ofGroup: group)
                snapshot.groupMembers[group] = members
                pending += members
            }
        }
        return snapshot
    }
}
