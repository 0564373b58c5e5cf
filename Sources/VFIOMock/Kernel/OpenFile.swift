import SystemPackage
/// One descriptor the mock handed out: what it refers to, its file position and open flags,
/// and the placeholder host descriptor that reserves its number.
final class OpenFile {
    enum Kind {
        case container(MockContainer)
        case group(MockGroup)
        case device(DeviceFile)
        case iommufd(IOMMUFDContext)
        /// A sysfs attribute or directory-free text file, generated at open.
        case text([UInt8], write: ((String) throws(Errno) -> Void)?)
        case config(PCIFunction)
        case resource(PCIFunction, bar: Int)
        case pagemap
        case uio(UIODevice)
        /// `/dev/kmsg`; the file position is the next record to read.
        case kmsg
    }

    let kind: Kind
    let flags: Int32
    let placeholder: Int32
    var position = 0

    init(kind: Kind, flags: Int32, placeholder: Int32) {
        self.kind = kind
        self.flags = flags
        self.placeholder = placeholder
    }
}

/// A vfio device file (`struct vfio_device_file`): opened from a group, or from the cdev.
final class DeviceFile {
    let device: VFIOPCIDevice
    /// The group it came from; nil for a cdev open.
    let group: MockGroup?
    /// Ioctls other than BIND are allowed (group open, or a cdev after BIND_IOMMUFD).
    var accessGranted: Bool

    init(device: VFIOPCIDevice, group: MockGroup?) {
        self.device = device
        self.group = group
        accessGranted = group != nil
    }
}
