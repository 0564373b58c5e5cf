import PCI

/// Where the kernel keeps the files VFIOKit and the host side read and write: sysfs, the VFIO,
/// iommufd and UIO device nodes, and the procfs files the binder checks.
///
/// The one place that knows the kernel's file layout. Paths are relative to a root (VFIOHost's
/// `HostTree`, or a test's directory); ``absolute(_:)`` gives the path a system call opens.
/// Each path is built from validated values only, so none can climb out of the directory it
/// names. (VFIOMock spells the same paths on its own: it is the kernel being modelled, and a
/// layout mistake here must show as a test failure, not be shared by both sides.)
public enum SysfsLayout {
    /// One directory (a symlink) per PCI function, named by its address.
    public static let pciDevices = "sys/bus/pci/devices"
    /// One directory per registered PCI driver, named as ``DriverName``.
    public static let pciDrivers = "sys/bus/pci/drivers"
    /// Writing an address here asks the kernel to probe drivers for that device.
    public static let driversProbe = "sys/bus/pci/drivers_probe"
    /// One entry per block device, named by its kernel name.
    public static let classBlock = "sys/class/block"
    /// One entry per network interface, named by its kernel name.
    public static let classNet = "sys/class/net"
    /// One directory per process, named by its pid.
    public static let processes = "proc"
    /// The calling process's mount table, which the binder reads to find mounted devices.
    public static let mountInfo = "proc/self/mountinfo"
    /// The active swap areas, which the binder checks before taking a block device.
    public static let swaps = "proc/swaps"
    /// One directory per IOMMU group, named by its number.
    public static let iommuGroups = "sys/kernel/iommu_groups"
    /// One directory per UIO device (`uio0`).
    public static let classUIO = "sys/class/uio"
    /// The directory of VFIO's group nodes (and `devices/`, the cdevs).
    public static let vfioNodes = "dev/vfio"
    /// The legacy VFIO container (CONFIG_VFIO_CONTAINER).
    public static let vfioContainer = "dev/vfio/vfio"
    /// iommufd (CONFIG_IOMMUFD); also a type1-compatible container.
    public static let iommufd = "dev/iommu"
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
    public static func iommuGroupDevices(_ group: Int) -> String { "\(iommuGroups)/\(group)/devices" }

    /// The VFIO group character device for `group`.
    public static func vfioGroupNode(_ group: Int, noIOMMU: Bool) -> String {
        "\(vfioNodes)/\(vfioGroupNodeName(group, noIOMMU: noIOMMU))"
    }

    /// The group node's name in ``vfioNodes``: `12`, or `noiommu-12` in no-IOMMU mode.
    public static func vfioGroupNodeName(_ group: Int, noIOMMU: Bool) -> String {
        noIOMMU ? "noiommu-\(group)" : "\(group)"
    }

    /// A VFIO device cdev by the name listed in the device's `vfio-dev` directory (`vfio3`).
    public static func vfioDeviceNode(_ name: KernelName) -> String { "\(vfioNodes)/devices/\(name)" }

    /// A UIO device node by the name listed in the device's `uio` directory (`uio0`).
    public static func uioNode(_ name: KernelName) -> String { "dev/\(name)" }

    /// A UIO device's `event`: its running count of interrupts.
    public static func uioEvent(_ name: KernelName) -> String { "\(classUIO)/\(name)/event" }

    /// The device's `resourceN`, which maps BAR `index`.
    public static func resource(_ address: PCIAddress, bar index: Int) -> String { "\(device(address))/resource\(index)" }

    /// The directory of process `pid`'s open files, one link per descriptor.
    public static func processFiles(_ pid: Int32) -> String { "\(processes)/\(pid)/fd" }

    /// Process `pid`'s command name.
    public static func processCommand(_ pid: Int32) -> String { "\(processes)/\(pid)/comm" }

    /// `path`, relative to the root, as the absolute path a system call opens on this host.
    public static func absolute(_ path: String) -> String { "/" + path }

    /// A block device's directory by its kernel name (a symlink into `sys/devices`).
    public static func block(_ name: KernelName) -> String { "\(classBlock)/\(name)" }

    /// A network interface's directory by its kernel name (a symlink into `sys/devices`).
    public static func net(_ name: KernelName) -> String { "\(classNet)/\(name)" }

    /// The files in a PCI device's sysfs directory that the host side reads or writes.
    public enum DeviceAttribute: String, Sendable {
        /// The ID attributes, `config` (config space), `resource` (the BAR table) and `reset`.
        case vendor, device, `class`, revision, config, resource, reset
        /// The directory of the device's VFIO cdev names (`vfio3`); absent before Linux 6.6
        /// and when no VFIO driver is bound.
        case vfioDev = "vfio-dev"
        /// The directory of the device's UIO node names (`uio0`) while uio_pci_generic drives it.
        case uio
        /// The subsystem IDs.
        case subsystemVendor = "subsystem_vendor", subsystemDevice = "subsystem_device"
        /// The NUMA node (-1 when unknown), and the one driver the next probe may bind.
        case numaNode = "numa_node", driverOverride = "driver_override"
        /// Symlink to the bound driver; absent when none is bound.
        case driver
        /// The bound driver's `unbind`, reached through the `driver` link.
        case driverUnbind = "driver/unbind"
        /// Symlink to the IOMMU group; absent without an IOMMU.
        case iommuGroup = "iommu_group"
    }

    /// The files in a driver's directory that bind a device to it (`bind`) or release one (`unbind`).
    public enum DriverControl: String, Sendable {
        /// `bind` takes the device whose address is written; `unbind` releases it.
        case bind, unbind
    }
}

/// A name the kernel gave a device in a sysfs class directory (`vda`, `eth0`, `dm-0`).
///
/// Made only from directory listings, where names never hold `/`; `.` and `..` are refused.
public struct KernelName: Hashable, Sendable, CustomStringConvertible {
    /// The name as the kernel listed it.
    public let rawValue: String

    /// Accepts a name listed by the kernel; nil for `.`, `..`, empty names and names with `/`.
    public init?(listed name: String) {
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/") else { return nil }
        rawValue = name
    }

    /// The name itself.
    public var description: String { rawValue }
}
