import PCI

/// Where the kernel keeps what the host side reads and writes, relative to a ``HostTree`` root.
///
/// The one place that knows the kernel's file layout. Each path is built from validated values
/// only, so none can climb out of the directory it names.
public enum SysfsLayout {
    public static let pciDevices = "sys/bus/pci/devices"
    public static let pciDrivers = "sys/bus/pci/drivers"
    /// Writing an address here asks the kernel to probe drivers for that device.
    public static let driversProbe = "sys/bus/pci/drivers_probe"
    public static let classBlock = "sys/class/block"
    public static let classNet = "sys/class/net"
    public static let mountInfo = "proc/self/mountinfo"
    public static let swaps = "proc/swaps"
    /// `Y` when vfio was loaded with `enable_unsafe_noiommu_mode=1`.
    public static let noIOMMUMode = "sys/module/vfio/parameters/enable_unsafe_noiommu_mode"

    /// The device's directory (a symlink into `sys/devices`).
    public static func device(_ address: PCIAddress) -> String { "\(pciDevices)/\(address)" }

    /// One of the device's attributes, such as `vendor` or `driver_override`.
    public static func device(_ address: PCIAddress, _ attribute: DeviceAttribute) -> String {
        "\(device(address))/\(attribute.rawValue)"
    }

    /// The driver's directory, which holds `bind`, `unbind` and a link per bound device.
    public static func driver(_ name: DriverName) -> String { "\(pciDrivers)/\(name)" }

    /// The driver's `bind` or `unbind` file.
    public static func driver(_ name: DriverName, _ control: DriverControl) -> String {
        "\(driver(name))/\(control.rawValue)"
    }

    /// The links to the members of IOMMU group `group`.
    public static func iommuGroupDevices(_ group: Int) -> String { "sys/kernel/iommu_groups/\(group)/devices" }

    /// The VFIO group character device for `group`.
    public static func vfioGroupNode(_ group: Int, noIOMMU: Bool) -> String {
        noIOMMU ? "dev/vfio/noiommu-\(group)" : "dev/vfio/\(group)"
    }

    /// A block device's directory by its kernel name (a symlink into `sys/devices`).
    public static func block(_ name: KernelName) -> String { "\(classBlock)/\(name)" }

    /// A network interface's directory by its kernel name (a symlink into `sys/devices`).
    public static func net(_ name: KernelName) -> String { "\(classNet)/\(name)" }

    /// The files in a PCI device's sysfs directory that the host side reads or writes.
    public enum DeviceAttribute: String, Sendable {
        case vendor, device, `class`, revision, config, resource
        case subsystemVendor = "subsystem_vendor", subsystemDevice = "subsystem_device"
        case numaNode = "numa_node", driverOverride = "driver_override"
        /// Symlink to the bound driver; absent when none is bound.
        case driver
        /// The bound driver's `unbind`, reached through the `driver` link.
        case driverUnbind = "driver/unbind"
        /// Symlink to the IOMMU group; absent without an IOMMU.
        case iommuGroup = "iommu_group"
    }

    public enum DriverControl: String, Sendable {
        case bind, unbind
    }
}

/// A name the kernel gave a device in a sysfs class directory (`vda`, `eth0`, `dm-0`).
///
/// Made only from directory listings, where names never hold `/`; `.` and `..` are refused.
public struct KernelName: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    /// Accepts a name listed by the kernel; nil for `.`, `..`, empty names and names with `/`.
    public init?(listed name: String) {
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/") else { return nil }
        rawValue = name
    }

    public var description: String { rawValue }
}
