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
        return try parse(name, at: path, expected: "a link to a driver") { try? DriverName($0) }
    }

    /// The IOMMU group's number, or nil when the device has none.
    public func iommuGroup(of address: PCIAddress) throws(HostAccessError) -> Int? {
        let path = SysfsLayout.device(address, .iommuGroup)
        guard let name = try tree.linkName(path) else { return nil }
        return try parse(name, at: path, expected: "a link to an IOMMU group") { Int($0).flatMap { $0 >= 0 ? $0 : nil } }
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
        return try parse(try tree.readText(path), at: path, expected: "lines of three hex numbers", PCIBAR.parse(resourceFile:))
    }

    private func driverOverride(of address: PCIAddress) throws(HostAccessError) -> DriverName? {
        let path = SysfsLayout.device(address, .driverOverride)
        guard let text = try tree.readTextIfPresent(path), text != "(null)", !text.isEmpty else { return nil }
        return try parse(text, at: path, expected: "a driver name or (null)") { try? DriverName($0) }
    }

    private func numaNode(of address: PCIAddress) throws(HostAccessError) -> Int? {
        let path = SysfsLayout.device(address, .numaNode)
        guard let text = try tree.readTextIfPresent(path) else { return nil }
        let node = try parse(text, at: path, expected: "a number") { Int($0) }
        return node < 0 ? nil : node
    }

    private func hex<T: FixedWidthInteger>(
        _ address: PCIAddress, _ attribute: SysfsLayout.DeviceAttribute
    )
        throws(HostAccessError) -> T
    {
        let path = SysfsLayout.device(address, attribute)
        let text: String
        do { text = try tree.readText(path) } catch .unreadable(_, .noSuchFileOrDirectory) { throw .noSuchDevice(address) }
        return try parse(text, at: path, expected: "a hex number like 0x8086") { $0.hasPrefix("0x") ? T($0.dropFirst(2), radix: 16) : nil }
    }

    /// What `parse` makes of `text`, read at `path`; ``HostAccessError/malformed(path:value:expected:)``
    /// saying what was `expected` there when it makes nothing.
    private func parse<T>(_ text: String, at path: String, expected: String, _ parse: (String) -> T?) throws(HostAccessError) -> T {
        guard let value = parse(text) else { throw .malformed(path: tree.absolute(path), value: text, expected: expected) }
        return value
    }
}
