#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import PCI
import SystemPackage

/// A device opened on some backend: how to reach it and how its DMA is addressed.
struct OpenedDevice {
    let backend: Backend
    let access: any DeviceAccess
    let mapper: any DMAMapper
}

/// Opens devices on each backend. Each backend is one function here, chosen from a table,
/// the way the kernel's VFIO selftests and libvfn keep their IOMMU modes.
enum DeviceOpening {
    static func open(_ address: PCIAddress, backend requested: Backend, system: any SystemCalls) throws(VFIOError) -> OpenedDevice {
        let sysfs = DeviceSysfs(address: address, system: system)
        let backend = try resolve(requested, sysfs: sysfs)
        let driver = try sysfs.driver()
        let needed = backend == .uio ? "uio_pci_generic" : "vfio-pci"
        guard driver == needed else { throw .wrongDriver(address, driver: driver, needed: needed) }
        switch backend {
        case .legacy: return try openGroup(sysfs, noIOMMU: false)
        case .noIOMMU: return try openGroup(sysfs, noIOMMU: true)
        case .iommufd: return try openCdev(sysfs)
        case .uio: return try UIODeviceFiles.open(sysfs)
        case .auto: preconditionFailure("resolve never returns .auto")
        }
    }

    /// Turns `.auto` (or the environment's choice) into a concrete backend.
    static func resolve(_ requested: Backend, sysfs: DeviceSysfs) throws(VFIOError) -> Backend {
        var choice = requested
        if choice == .auto, let value = getenv(Backend.environmentVariable).map({ String(cString: $0) }), !value.isEmpty {
            guard let forced = Backend(rawValue: value) else {
                throw .backendUnavailable(.auto, reason: "\(Backend.environmentVariable)=\(value) is not one of \(Backend.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            choice = forced
        }
        guard choice == .auto else { return choice }
        if try sysfs.driver() == "uio_pci_generic" { return .uio }
        let nodes = (try? sysfs.system.listDirectory("/dev/vfio")) ?? []
        if let group = try sysfs.iommuGroup(), nodes.contains("noiommu-\(group)") { return .noIOMMU }
        if try !sysfs.children("vfio-dev").isEmpty, let iommufd = try? sysfs.system.open("/dev/iommu", O_RDWR) {
            try? sysfs.system.close(iommufd)
            return .iommufd
        }
        return .legacy
    }

    /// The legacy path: container, group, type1 (v2 preferred) or no-IOMMU, then the device fd.
    static func openGroup(_ sysfs: DeviceSysfs, noIOMMU: Bool) throws(VFIOError) -> OpenedDevice {
        let system = sysfs.system
        guard let group = try sysfs.iommuGroup() else {
            throw .backendUnavailable(noIOMMU ? .noIOMMU : .legacy, reason: "\(sysfs.address) has no IOMMU group")
        }
        var owned = OwnedDescriptors(system: system)
        let container: FileDescriptor
        do {
            container = try owned.open("/dev/vfio/vfio")
        } catch .systemCall(_, .noSuchFileOrDirectory) {
            throw .backendUnavailable(
                noIOMMU ? .noIOMMU : .legacy,
                reason: "/dev/vfio/vfio does not exist: the kernel has no VFIO container (CONFIG_VFIO_CONTAINER)"
                    + (noIOMMU ? "" : "; use the iommufd backend"))
        }
        let version = try attempt("VFIO_GET_API_VERSION") { () throws(Errno) in try system.ioctl(container, CVFIO_GET_API_VERSION, value: 0) }
        guard version == VFIO_API_VERSION else {
            throw .backendUnavailable(.legacy, reason: "VFIO API version \(version), expected \(VFIO_API_VERSION)")
        }
        let iommuType = try chooseIOMMUType(container: container, noIOMMU: noIOMMU, system: system)
        let groupPath = noIOMMU ? "/dev/vfio/noiommu-\(group)" : "/dev/vfio/\(group)"
        let groupFD: FileDescriptor
        do {
            groupFD = try owned.open(groupPath)
        } catch .systemCall(_, .noSuchFileOrDirectory) where !noIOMMU && ((try? system.listDirectory("/dev/vfio")) ?? []).contains("noiommu-\(group)") {
            throw .backendUnavailable(.legacy, reason: "IOMMU group \(group) is a no-IOMMU group (the host has no IOMMU): use the noiommu backend")
        }

        var status = vfio_group_status()
        status.argsz = UInt32(MemoryLayout<vfio_group_status>.size)
        try attempt("VFIO_GROUP_GET_STATUS(\(groupPath))") { () throws(Errno) in try system.ioctl(groupFD, CVFIO_GROUP_GET_STATUS, &status) }
        guard status.flags & UInt32(VFIO_GROUP_FLAGS_VIABLE) != 0 else { throw .groupNotViable(group: group, sysfs.address) }
        var containerFD = container.rawValue
        try attempt("VFIO_GROUP_SET_CONTAINER(\(groupPath))") { () throws(Errno) in
            try system.ioctl(groupFD, CVFIO_GROUP_SET_CONTAINER, &containerFD)
        }
        try attempt("VFIO_SET_IOMMU(\(iommuType))") { () throws(Errno) in try system.ioctl(container, CVFIO_SET_IOMMU, value: iommuType) }

        let deviceFD = try getDeviceFD(group: groupFD, address: sysfs.address, system: system)
        owned.adopt(deviceFD)
        let mapper: any DMAMapper
        let access: VFIODeviceFile
        do {
            // From here each object owns its files and releases them if its set-up fails.
            owned.release()
            if noIOMMU {
                mapper = try PhysicalAddressSpace(system: system, companions: [groupFD, container])
            } else {
                mapper = try Type1Container(fd: container, group: groupFD, system: system)
            }
        } catch {
            try? system.close(deviceFD)
            throw error
        }
        do {
            access = try VFIODeviceFile(fd: deviceFD, system: system)
        } catch {
            mapper.close()
            throw error
        }
        return OpenedDevice(backend: noIOMMU ? .noIOMMU : .legacy, access: access, mapper: mapper)
    }

    private static func chooseIOMMUType(container: FileDescriptor, noIOMMU: Bool, system: any SystemCalls) throws(VFIOError) -> Int {
        let candidates = noIOMMU ? [Int(VFIO_NOIOMMU_IOMMU)] : [Int(VFIO_TYPE1v2_IOMMU), Int(VFIO_TYPE1_IOMMU)]
        for type in candidates {
            let supported = try attempt("VFIO_CHECK_EXTENSION(\(type))") { () throws(Errno) in
                try system.ioctl(container, CVFIO_CHECK_EXTENSION, value: type)
            }
            if supported > 0 { return type }
        }
        throw .backendUnavailable(
            noIOMMU ? .noIOMMU : .legacy,
            reason: noIOMMU
                ? "the kernel does not offer no-IOMMU mode (load vfio with enable_unsafe_noiommu_mode=1)"
                : "the container offers no type1 IOMMU (is vfio_iommu_type1 loaded?)")
    }

    private static func getDeviceFD(group: FileDescriptor, address: PCIAddress, system: any SystemCalls) throws(VFIOError) -> FileDescriptor {
        var name = Array(address.description.utf8CString)
        let fd = try attempt("VFIO_GROUP_GET_DEVICE_FD(\(address))") { () throws(Errno) -> Int32 in
            try name.withUnsafeMutableBufferPointer { (p) throws(Errno) -> Int32 in
                try system.ioctl(group, UInt(CVFIO_GROUP_GET_DEVICE_FD), UInt(bitPattern: p.baseAddress))
            }
        }
        return FileDescriptor(rawValue: fd)
    }

    /// The cdev path: `/dev/vfio/devices/vfioN` bound to an iommufd IOAS.
    static func openCdev(_ sysfs: DeviceSysfs) throws(VFIOError) -> OpenedDevice {
        let system = sysfs.system
        guard let node = try sysfs.children("vfio-dev").first(where: { $0.hasPrefix("vfio") }) else {
            throw .backendUnavailable(.iommufd, reason: "\(sysfs.address) has no VFIO cdev (kernel without CONFIG_VFIO_DEVICE_CDEV?)")
        }
        var owned = OwnedDescriptors(system: system)
        let device = try owned.open("/dev/vfio/devices/\(node)")
        let iommufd = try owned.open("/dev/iommu")
        owned.forget(iommufd)  // the address space owns it from here, even when it fails
        let space: IOMMUFDAddressSpace
        do {
            space = try IOMMUFDAddressSpace(iommufd: iommufd, device: device, system: system)
        } catch .systemCall("VFIO_DEVICE_BIND_IOMMUFD", .notPermitted) {
            // The IOMMU will not hand the group's DMA to userspace while a kernel driver owns part of it.
            guard let group = try sysfs.iommuGroup() else { throw .systemCall(operation: "VFIO_DEVICE_BIND_IOMMUFD", errno: .notPermitted) }
            throw .groupNotViable(group: group, sysfs.address)
        }
        owned.release()
        do {
            let access = try VFIODeviceFile(fd: device, system: system)
            return OpenedDevice(backend: .iommufd, access: access, mapper: space)
        } catch {
            space.close()
            throw error
        }
    }
}

/// Files opened during a multi-step set-up, closed together unless the set-up succeeds.
struct OwnedDescriptors: ~Copyable {
    let system: any SystemCalls
    private var fds: [FileDescriptor] = []

    init(system: any SystemCalls) { self.system = system }

    mutating func open(_ path: String) throws(VFIOError) -> FileDescriptor {
        let fd = try attempt("open \(path)") { () throws(Errno) in try system.open(path, O_RDWR) }
        fds.append(fd)
        return fd
    }

    mutating func adopt(_ fd: FileDescriptor) { fds.append(fd) }
    mutating func forget(_ fd: FileDescriptor) { fds.removeAll { $0 == fd } }
    /// The set-up succeeded: the files now belong to their users.
    mutating func release() { fds.removeAll() }

    deinit { for fd in fds.reversed() { try? system.close(fd) } }
}
