import PCI
import VFIOKit

/// A PCI function as the host's sysfs shows it at one moment.
public struct HostPCIDevice: Equatable, Sendable {
    public let address: PCIAddress
    public let vendorID: UInt16
    public let deviceID: UInt16
    public let subsystemVendorID: UInt16
    public let subsystemDeviceID: UInt16
    /// Base class, subclass and programming interface: `0x010802` for an NVMe controller.
    public let classCode: UInt32
    public let revision: UInt8
    /// The bound driver; nil when none is.
    public let driver: DriverName?
    /// The driver named in `driver_override`; nil when it holds `(null)`.
    public let driverOverride: DriverName?
    /// The IOMMU group's number; nil when the device has none (no IOMMU, or no-IOMMU mode
    /// before vfio-pci creates one).
    public let iommuGroup: Int?
    /// The NUMA node; nil when the kernel reports -1 (no affinity) or has no NUMA support.
    public let numaNode: Int?

    public init(
        address: PCIAddress, vendorID: UInt16, deviceID: UInt16, subsystemVendorID: UInt16, subsystemDeviceID: UInt16,
        classCode: UInt32, revision: UInt8, driver: DriverName?, driverOverride: DriverName?, iommuGroup: Int?,
        numaNode: Int?
    ) {
        self.address = address
        self.vendorID = vendorID
        self.deviceID = deviceID
        self.subsystemVendorID = subsystemVendorID
        self.subsystemDeviceID = subsystemDeviceID
        self.classCode = classCode
        self.revision = revision
        self.driver = driver
        self.driverOverride = driverOverride
        self.iommuGroup = iommuGroup
        self.numaNode = numaNode
    }

    /// Base class and subclass, the key pci.ids names classes by (`0x0108`).
    public var classID: UInt16 { UInt16(truncatingIfNeeded: classCode >> 8) }
}
