import PCI
import VFIOKit

/// Finds the addresses of the PCI devices on a host.
public protocol PCIDeviceEnumerator: Sendable {
    /// Every PCI device present, sorted by address.
    func addresses() throws(HostAccessError) -> [PCIAddress]
}

/// Lists `sys/bus/pci/devices` in a ``HostTree``: works on any root, including a test's fake.
public struct SysfsPCIEnumerator: PCIDeviceEnumerator {
    public let tree: HostTree

    public init(tree: HostTree) { self.tree = tree }

    /// Entries whose names are not PCI addresses are not devices and are left out.
    public func addresses() throws(HostAccessError) -> [PCIAddress] {
        try tree.list(SysfsLayout.pciDevices).compactMap { try? PCIAddress(parsing: $0) }.sorted()
    }
}
