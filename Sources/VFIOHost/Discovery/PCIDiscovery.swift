import PCI
import SystemPackage
import VFIOKit

/// Reads what the host's sysfs says about its PCI devices and IOMMU groups.
public struct PCIDiscovery: Sendable {
    public let tree: HostTree
    public let enumerator: any PCIDeviceEnumerator

    /// Enumerates through libudev on the real root and by listing sysfs on any other root
    /// (libudev always reads the real `/sys`).
    public init(tree: HostTree = .system, enumerator: (any PCIDeviceEnumerator)? = nil) {
        self.tree = tree
        self.enumerator = enumerator ?? (tree.isSystemRoot ? UdevPCIEnumerator() : SysfsPCIEnumerator(tree: tree))
    }

    /// Every device on the host, sorted by address. A device that disappears while it is being
    /// read is left out.
    public func devices() throws(HostAccessError) -> [HostPCIDevice] {
        var result: [HostPCIDevice] = []
        for address in try enumerator.addresses() {
            do { result.append(try device(address)) } catch .noSuchDevice { continue }
        }
        return result
    }

    /// Whether the host has a device at `address`.
    public func exists(_ address: PCIAddress) -> Bool { tree.exists(SysfsLayout.device(address, .vendor)) }

    /// One device; throws ``HostAccessError/noSuchDevice(_:)`` when the host has none there.
    public func device(_ address: PCIAddress) throws(HostAccessError) -> HostPCIDevice {
        guard exists(address) else { throw .noSuchDevice(address) }
        return HostPCIDevice(
            address: address,
            vendorID: try hex(address, .vendor),
            deviceID: try hex(address, .device),
            subsystemVendorID: try hex(address, .subsystemVendor),
            subsystemDeviceID: try hex(address, .subsystemDevice),
            classCode: try hex(address, .class),
            revision: try hex(address, .revision),
            driver: try driver(of: address),
            driverOverride: try driverOverride(of: address),
            iommuGroup: try iommuGroup(of: address),
            numaNode: try numaNode(of: address))
    }

    /// The driver bound to the device, or nil.
    public func driver(of address: PCIAddress) throws(HostAccessError) -> DriverName? {
        let path = SysfsLayout.device(address, .driver)
        guard let name = try tree.linkName(path) else { return nil }
        guard let driver = try? DriverName(name) else {
            throw .malformed(path: tree.absolute(path), value: name, expected: "a link to a driver")
        }
        return driver
    }

    /// The IOMMU group's number, or nil when the device has none.
    public func iommuGroup(of address: PCIAddress) throws(HostAccessError) -> Int? {
        let path = SysfsLayout.device(address, .iommuGroup)
        guard let name = try tree.linkName(path) else { return nil }
        guard let group = Int(name), group >= 0 else {
            throw .malformed(path: tree.absolute(path), value: name, expected: "a link to an IOMMU group")
        }
        return group
    }

    /// The members of an IOMMU group, sorted.
    public func members(ofGroup group: Int) throws(HostAccessError) -> [PCIAddress] {
        try tree.list(SysfsLayout.iommuGroupDevices(group)).compactMap { try? PCIAddress(parsing: $0) }.sorted()
    }

    /// Whether a driver is loaded (has a directory under `sys/bus/pci/drivers`).
    public func isLoaded(_ driver: DriverName) -> Bool { tree.exists(SysfsLayout.driver(driver)) }

    /// Whether vfio offers no-IOMMU mode (`enable_unsafe_noiommu_mode` is `Y`).
    public func noIOMMUModeEnabled() throws(HostAccessError) -> Bool {
        try tree.readTextIfPresent(SysfsLayout.noIOMMUMode) == "Y"
    }

    /// The device's BARs and ROM from its `resource` file.
    public func bars(of address: PCIAddress) throws(HostAccessError) -> [PCIBAR] {
        let path = SysfsLayout.device(address, .resource)
        let text = try tree.readText(path)
        guard let bars = PCIBAR.parse(resourceFile: text) else {
            throw .malformed(path: tree.absolute(path), value: text, expected: "lines of three hex numbers")
        }
        return bars
    }

    private func driverOverride(of address: PCIAddress) throws(HostAccessError) -> DriverName? {
        let path = SysfsLayout.device(address, .driverOverride)
        guard let text = try tree.readTextIfPresent(path), text != "(null)", !text.isEmpty else { return nil }
        guard let name = try? DriverName(text) else {
            throw .malformed(path: tree.absolute(path), value: text, expected: "a driver name or (null)")
        }
        return name
    }

    private func numaNode(of address: PCIAddress) throws(HostAccessError) -> Int? {
        let path = SysfsLayout.device(address, .numaNode)
        guard let text = try tree.readTextIfPresent(path) else { return nil }
        guard let node = Int(text) else { throw .malformed(path: tree.absolute(path), value: text, expected: "a number") }
        return node < 0 ? nil : node
    }

    private func hex<T: FixedWidthInteger>(_ address: PCIAddress, _ attribute: SysfsLayout.DeviceAttribute)
        throws(HostAccessError) -> T
    {
        let path = SysfsLayout.device(address, attribute)
        let text: String
        do { text = try tree.readText(path) } catch .unreadable(_, .noSuchFileOrDirectory) { throw .noSuchDevice(address) }
        guard text.hasPrefix("0x"), let value = T(text.dropFirst(2), radix: 16) else {
            throw .malformed(path: tree.absolute(path), value: text, expected: "a hex number like 0x8086")
        }
        return value
    }
}
