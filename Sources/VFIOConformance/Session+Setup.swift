import CVFIO
import PCI
import SystemPackage
import VFIOKit

/// Where a device's DMA is mapped: a container (type1, or `/dev/iommu` as one) or an IOAS.
enum DMAContext {
    case container(FileDescriptor)
    case ioas(iommufd: FileDescriptor, id: UInt32)
}

/// A device fd and its DMA context, as one mode's set-up leaves them.
struct OpenDevice {
    let fd: FileDescriptor
    let dma: DMAContext
}

extension Session {
    /// Opens `address` as the mode does, recording each step: container, group, status,
    /// SET_CONTAINER, CHECK_EXTENSION, SET_IOMMU, GET_DEVICE_FD; or cdev, `/dev/iommu`,
    /// BIND_IOMMUFD, IOAS_ALLOC, ATTACH_IOMMUFD_PT.
    func openDevice(_ address: PCIAddress) throws(Stop) -> OpenDevice {
        if mode.containerPath != nil {
            let container = try openContainerWithIOMMU(for: address)
            return OpenDevice(fd: try require(deviceFD(container.group, address)), dma: .container(container.fd))
        }
        let device = try require(open(try cdevNode(address), as: "device cdev"))
        let iommufd = try require(open(SysfsLayout.absolute(SysfsLayout.iommufd), as: "/dev/iommu"))
        try require(bind(device, iommufd: iommufd.rawValue))
        let ioas = try require(allocateIOAS(iommufd))
        try require(attach(device, to: ioas))
        return OpenDevice(fd: device, dma: .ioas(iommufd: iommufd, id: ioas))
    }

    /// The group-mode set-up up to SET_IOMMU.
    func openContainerWithIOMMU(for address: PCIAddress) throws(Stop) -> (fd: FileDescriptor, group: FileDescriptor) {
        let container = try require(open(mode.containerNode, as: "container \(mode.containerNode)"))
        let group = try require(openGroup(address))
        groupStatus(group)
        try require(setContainer(group, container) ? () : nil)
        ioctl("CHECK_EXTENSION \(mode.iommuTypeArgument)", container, CVFIO_CHECK_EXTENSION, value: mode.iommuTypeArgument)
        try require(ioctl("SET_IOMMU \(mode.iommuTypeArgument)", container, CVFIO_SET_IOMMU, value: mode.iommuTypeArgument))
        return (container, group)
    }

    func openGroup(_ address: PCIAddress) throws(Stop) -> FileDescriptor? {
        open(try groupNode(address), as: "group")
    }

    /// VFIO_GROUP_GET_STATUS: records the flags (VIABLE 1, CONTAINER_SET 2).
    @discardableResult
    func groupStatus(_ group: FileDescriptor) -> UInt32? {
        ioctl("GROUP_GET_STATUS", group, CVFIO_GROUP_GET_STATUS, IoctlArgument(argsz: 8), reply: 4) { "flags \(hex($0))" }
    }

    func setContainer(_ group: FileDescriptor, _ container: FileDescriptor) -> Bool {
        let arg = IoctlArgument(size: 4)
        arg[i32: 0] = container.rawValue
        return ioctl("GROUP_SET_CONTAINER", group, CVFIO_GROUP_SET_CONTAINER, arg)
    }

    /// VFIO_GROUP_GET_DEVICE_FD by the device's name.
    func deviceFD(_ group: FileDescriptor, _ address: PCIAddress) -> FileDescriptor? {
        let fd = step("GROUP_GET_DEVICE_FD", describe: { _ in "ok" }) { () throws(Errno) -> FileDescriptor in
            let name = Array(address.description.utf8CString)
            let arg = IoctlArgument(size: name.count)
            for (i, c) in name.enumerated() { arg.bytes[i] = UInt8(bitPattern: c) }
            return FileDescriptor(rawValue: try system.ioctl(group, UInt(CVFIO_GROUP_GET_DEVICE_FD), arg.address))
        }
        if let fd { adopt(fd) }
        return fd
    }

    /// VFIO_DEVICE_BIND_IOMMUFD: records the device id the kernel hands back.
    func bind(_ device: FileDescriptor, iommufd: Int32) -> UInt32? {
        let arg = IoctlArgument(argsz: 16)
        arg[i32: 8] = iommufd
        return ioctl("DEVICE_BIND_IOMMUFD", device, CVFIO_DEVICE_BIND_IOMMUFD, arg, reply: 12) { "dev id \($0)" }
    }

    /// IOMMU_IOAS_ALLOC: records the new IOAS id.
    func allocateIOAS(_ iommufd: FileDescriptor) -> UInt32? {
        ioctl("IOAS_ALLOC", iommufd, CVFIO_IOMMUFD_IOAS_ALLOC, IoctlArgument(argsz: 12), reply: 8) { "ioas \($0)" }
    }

    /// VFIO_DEVICE_ATTACH_IOMMUFD_PT: records the HWPT id the kernel writes back.
    func attach(_ device: FileDescriptor, to id: UInt32) -> UInt32? {
        let arg = IoctlArgument(argsz: 12)
        arg[u32: 8] = id
        return ioctl("DEVICE_ATTACH_IOMMUFD_PT \(id)", device, CVFIO_DEVICE_ATTACH_IOMMUFD_PT, arg, reply: 8) { "pt \($0)" }
    }

    @discardableResult
    func detach(_ device: FileDescriptor) -> Bool {
        let arg = IoctlArgument(argsz: 8)
        return ioctl("DEVICE_DETACH_IOMMUFD_PT", device, CVFIO_DEVICE_DETACH_IOMMUFD_PT, arg)
    }
}
