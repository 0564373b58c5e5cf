import PCI
import VFIOKit

/// Why a bind or unbind was refused before anything was written. Every problem found is
/// listed, each with what to do about it.
public struct BindRefusal: Error, Equatable, CustomStringConvertible {
    public let problems: [BindProblem]

    public var description: String {
        problems.count == 1
            ? problems[0].description
            : "refused for \(problems.count) reasons:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}

/// One reason a bind or unbind cannot go ahead.
public enum BindProblem: Equatable, Sendable, CustomStringConvertible {
    case noSuchDevice(PCIAddress)
    /// vfiokit loads no modules.
    case driverNotLoaded(DriverName)
    /// A device has no IOMMU group and vfio's no-IOMMU mode is off.
    case noIOMMUGroup(PCIAddress)
    /// Another member of the group holds a driver that claims DMA.
    case groupNotViable(group: Int, member: PCIAddress, driver: DriverName)
    /// The host uses the device (mounted filesystem, swap, up interface).
    case inUse(PCIAddress, DeviceUsage)
    /// `unbind` met a device on a host driver.
    case boundToHostDriver(PCIAddress, DriverName)
    /// The original driver to restore is not loaded.
    case originalDriverNotLoaded(PCIAddress, DriverName)

    public var description: String {
        switch self {
        case let .noSuchDevice(address):
            "no PCI device \(address) on this host; run `vfiokit list` to see the addresses there"
        case let .driverNotLoaded(driver):
            "the \(driver) driver is not loaded and vfiokit loads no modules; run `modprobe \(driver)` first"
        case let .noIOMMUGroup(address):
            """
            \(address) has no IOMMU group, so VFIO cannot isolate it: turn the IOMMU on (intel_iommu=on or \
            amd_iommu=on on the kernel command line, and VT-d/AMD-Vi in the firmware), or, unsafely and only for \
            testing, enable vfio's no-IOMMU mode: `echo Y > /sys/module/vfio/parameters/enable_unsafe_noiommu_mode`; \
            uio_pci_generic (--driver uio_pci_generic) needs no IOMMU
            """
        case let .groupNotViable(group, member, driver):
            "group \(group) is not viable: \(member) is bound to \(driver); bind it to vfio-pci too or use --whole-group"
        case let .inUse(address, usage):
            "\(address) is in use by the host (\(usage.summary)); stop using it (umount, swapoff, ip link set down) or use --force"
        case let .boundToHostDriver(address, driver):
            """
            \(address) is bound to the host driver \(driver), not to a userspace driver; `vfiokit unbind` releases \
            devices from vfio-pci or uio_pci_generic; use --force to unbind it anyway
            """
        case let .originalDriverNotLoaded(address, driver):
            "cannot restore \(address) to \(driver): that driver is not loaded; run `modprobe \(driver)` and retry"
        }
    }
}
