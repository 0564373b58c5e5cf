import PCI
import VFIOKit

/// What `vfiokit bind` was asked to do.
public struct BindRequest: Equatable, Sendable {
    public var addresses: [PCIAddress]
    /// vfio-pci or uio_pci_generic.
    public var driver: DriverName
    /// Also bind the other members of each device's IOMMU group that hold a host driver.
    public var wholeGroup: Bool
    /// Bind even devices that back mounted filesystems, swap or up interfaces.
    public var force: Bool
    /// The bytes a driver of these devices is expected to pin for DMA; a lower RLIMIT_MEMLOCK
    /// draws a warning.
    public var pinSize: UInt64

    public init(
        addresses: [PCIAddress], driver: DriverName = .vfioPCI, wholeGroup: Bool = false, force: Bool = false,
        pinSize: UInt64 = MemlockLimit.defaultPinSize
    ) {
        self.addresses = addresses
        self.driver = driver
        self.wholeGroup = wholeGroup
        self.force = force
        self.pinSize = pinSize
    }
}

/// What `vfiokit unbind` was asked to do.
public struct UnbindRequest: Equatable, Sendable {
    public var addresses: [PCIAddress]
    /// Give each device back to the driver it had before `vfiokit bind`.
    public var restore: Bool
    /// Unbind even a device that holds a host driver rather than a userspace one.
    public var force: Bool

    public init(addresses: [PCIAddress], restore: Bool = false, force: Bool = false) {
        self.addresses = addresses
        self.restore = restore
        self.force = force
    }
}
