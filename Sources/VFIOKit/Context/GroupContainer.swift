#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import PCI
import SystemPackage

/// The group path of an ``IOMMUContext``: one container (`/dev/vfio/vfio`, or iommufd's
/// compatibility container `/dev/iommu`) holding every IOMMU group the context opened.
///
/// The kernel lets a group be opened once, so each group is opened here once however many of
/// its functions are in use, and stays open while any of them is. The container owns its file
/// and the groups' files and closes them in ``close()``. Not thread-safe: the context
/// serialises every call.
final class GroupContainer {
    let system: any SystemCalls
    let fd: FileDescriptor
    /// The mode the kernel accepted, after falling back along the candidates.
    let mode: IOMMUMode
    private var groups: [Int: (fd: FileDescriptor, devices: Int)] = [:]

    /// Opens the container and picks the first of `candidates` its kernel supports.
    init(candidates: [IOMMUMode], system: any SystemCalls) throws(VFIOError) {
        guard let path = candidates.first?.containerPath else { preconditionFailure("the group path needs a container") }
        let backend = candidates[0].backend
        self.system = system
        let opened: FileDescriptor
        do {
            opened = try system.open(path, O_RDWR)
        } catch .noSuchFileOrDirectory {
            throw .backendUnavailable(
                backend,
                reason: "\(path) does not exist: the kernel has no "
                    + (path == SysfsLayout.absolute(SysfsLayout.iommufd)
                        ? "iommufd (CONFIG_IOMMUFD)" : "VFIO container (CONFIG_VFIO_CONTAINER)")
                    + (backend == .legacy && path != SysfsLayout.absolute(SysfsLayout.iommufd) ? "; use the iommufd backend" : ""))
        } catch {
            throw error.vfio(SystemCall("open", path: path))
        }
        // On a failure below it closes as it goes out of scope.
        let fd = OwnedFileDescriptor(opened, name: path, system: system)
        let version = try attempt(SystemCall("VFIO_GET_API_VERSION", path: path)) { () throws(Errno) in
            try system.ioctl(fd.rawValue, CVFIO_GET_API_VERSION, value: 0)
        }
        guard version == VFIO_API_VERSION else {
            throw VFIOError.backendUnavailable(backend, reason: "VFIO API version \(version), expected \(VFIO_API_VERSION)")
        }
        mode = try Self.supportedMode(candidates, container: fd.rawValue, system: system)
        self.fd = fd.release()
    }

    private static func supportedMode(
        _ candidates: [IOMMUMode], container: FileDescriptor, system: any SystemCalls
    ) throws(VFIOError) -> IOMMUMode {
        for mode in candidates {
            guard let type = mode.iommuType else { continue }
            let supported = try attempt(SystemCall("VFIO_CHECK_EXTENSION", detail: mode.name)) { () throws(Errno) in
                try system.ioctl(container, CVFIO_CHECK_EXTENSION, value: Int(type))
            }
            if supported > 0 { return mode }
        }
        let backend = candidates[0].backend
        throw .backendUnavailable(
            backend,
            reason: backend == .noIOMMU
                ? "the kernel does not offer no-IOMMU mode (load vfio with enable_unsafe_noiommu_mode=1)"
                : "the container offers none of \(candidates.map(\.name).joined(separator: ", ")) (is vfio_iommu_type1 loaded?)")
    }

    /// True once a group holds the container's IOMMU (the first join sets it).
    var hasGroups: Bool { !groups.isEmpty }

    /// The number of groups open.
    var groupCount: Int { groups.count }

    /// Opens `device` from `group`, opening the group and attaching it to the container the
    /// first time. Returns the device fd and whether the group was new. On failure nothing
    /// this call opened stays open.
    func openDevice(_ address: PCIAddress, group: Int) throws(VFIOError) -> (device: FileDescriptor, newGroup: Bool) {
        if let entry = groups[group] {
            let device = try Self.deviceFD(group: entry.fd, address: address, system: system)
            groups[group]?.devices += 1
            return (device, false)
        }
        // On a failure below it closes as it goes out of scope.
        let groupFD = try join(group, address: address)
        let device = try Self.deviceFD(group: groupFD.rawValue, address: address, system: system)
        groups[group] = (groupFD.release(), 1)
        return (device, true)
    }

    /// Opens the group node, checks the group is viable and attaches it; the first group
    /// also sets the container's IOMMU type.
    private func join(_ number: Int, address: PCIAddress) throws(VFIOError) -> OwnedFileDescriptor {
        let noIOMMU = mode == .noIOMMU
        let path = SysfsLayout.absolute(SysfsLayout.vfioGroupNode(number, noIOMMU: noIOMMU))
        let opened: FileDescriptor
        do {
            opened = try system.open(path, O_RDWR)
        } catch .noSuchFileOrDirectory
            where !noIOMMU
            && ((try? system.listDirectory(SysfsLayout.absolute(SysfsLayout.vfioNodes))) ?? [])
                .contains(SysfsLayout.vfioGroupNodeName(number, noIOMMU: true))
        {
            throw .backendUnavailable(
                .legacy, reason: "IOMMU group \(number) is a no-IOMMU group (the host has no IOMMU): use the noiommu backend")
        } catch {
            throw error.vfio(SystemCall("open", path: path, device: address))
        }
        // On a failure below it closes as it goes out of scope.
        let group = OwnedFileDescriptor(opened, name: path, system: system)
        let groupFD = group.rawValue
        var status = vfio_group_status()
        status.argsz = UInt32(MemoryLayout<vfio_group_status>.size)
        try attempt(SystemCall("VFIO_GROUP_GET_STATUS", path: path)) { () throws(Errno) in
            try system.ioctl(groupFD, CVFIO_GROUP_GET_STATUS, &status)
        }
        guard status.flags & UInt32(VFIO_GROUP_FLAGS_VIABLE) != 0 else { throw .groupNotViable(group: number, address) }
        var containerFD = fd.rawValue
        try attempt(SystemCall("VFIO_GROUP_SET_CONTAINER", path: path)) { () throws(Errno) in
            try system.ioctl(groupFD, CVFIO_GROUP_SET_CONTAINER, &containerFD)
        }
        if groups.isEmpty, let type = mode.iommuType {
            try attempt(SystemCall("VFIO_SET_IOMMU", detail: mode.name)) { () throws(Errno) in
                try system.ioctl(fd, CVFIO_SET_IOMMU, value: Int(type))
            }
        }
        return group
    }

    private static func deviceFD(group: FileDescriptor, address: PCIAddress, system: any SystemCalls) throws(VFIOError) -> FileDescriptor {
        var name = Array(address.description.utf8CString)
        let fd = try attempt(SystemCall("VFIO_GROUP_GET_DEVICE_FD", device: address)) { () throws(Errno) -> Int32 in
            try name.withUnsafeMutableBufferPointer { (p) throws(Errno) -> Int32 in
                try system.ioctl(group, UInt(CVFIO_GROUP_GET_DEVICE_FD), UInt(bitPattern: p.baseAddress))
            }
        }
        return FileDescriptor(rawValue: fd)
    }

    /// A device of `group` closed. The group's file is closed with its last device, unless it
    /// is the container's last group and `keepLast` is set: closing it would drop the IOMMU and
    /// every mapping with it, so it stays until ``close()``.
    func deviceClosed(group: Int, keepLast: Bool) {
        guard let entry = groups[group] else { return }
        guard entry.devices <= 1 else {
            groups[group]?.devices -= 1
            return
        }
        if keepLast && groups.count == 1 {
            groups[group]?.devices = 0
            return
        }
        groups[group] = nil
        // Cannot fail in a way a caller could act on: VFIO's group release reports nothing, and
        // Linux releases the descriptor even when close reports an error.
        try? system.close(entry.fd)
    }

    /// Closes every group, then the container; the kernel drops the IOMMU and its mappings.
    /// The closes cannot fail in a way a caller could act on: VFIO's group and container
    /// releases report nothing, and Linux releases a descriptor even when close reports an error.
    func close() {
        for entry in groups.values { try? system.close(entry.fd) }
        groups.removeAll()
        try? system.close(fd)
    }
}
