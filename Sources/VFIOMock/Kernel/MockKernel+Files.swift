#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import PCI
import SystemPackage

/// open(2) and close(2): which path is what, and what closing each kind of file releases.
extension MockKernel {
    /// open(2) of a path the mock models (`/dev/vfio`, `/dev/iommu`, `/dev/uioN`, `/dev/kmsg`,
    /// `/sys`, `/proc/self/pagemap`), which gets a real, unique descriptor number; `ENOENT` for any other
    /// path, so tests never touch the host.
    public func open(_ path: String, _ flags: Int32) throws(Errno) -> FileDescriptor {
        let fd = try lock.withLock { () throws(Errno) -> Int32 in
            let kind = try openKind(path, flags: flags)
            return try install(kind, flags: flags)
        }
        return FileDescriptor(rawValue: fd)
    }

    /// Reserves a real descriptor number for a mock file. UIO files get an eventfd so that
    /// epoll on them works; the mock signals it with each interrupt.
    func install(_ kind: OpenFile.Kind, flags: Int32) throws(Errno) -> Int32 {
        let placeholder: Int32
        if case .uio = kind {
            placeholder = cvfio_eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC))
        } else {
            placeholder = Glibc.open("/dev/null", O_RDWR | O_CLOEXEC)
        }
        guard placeholder >= 0 else {
            let e = Errno(rawValue: errno)
            release(kind)
            throw e
        }
        let file = OpenFile(kind: kind, flags: flags, placeholder: placeholder)
        files[placeholder] = file
        if case .uio(let u) = kind {
            u.listeners.append(file)
            u.lastSeen[ObjectIdentifier(file)] = u.eventCount
        }
        return placeholder
    }

    private func openKind(_ path: String, flags: Int32) throws(Errno) -> OpenFile.Kind {
        if path == "/dev/vfio/vfio" {
            guard configuration.legacyContainerAvailable else { throw .noSuchFileOrDirectory }
            return .container(MockContainer(configuration: configuration))
        }
        if path == "/dev/iommu" {
            guard configuration.iommufdAvailable else { throw .noSuchFileOrDirectory }
            return .iommufd(IOMMUFDContext(configuration: configuration))
        }
        if path == "/proc/self/pagemap" { return .pagemap }
        if path == "/dev/kmsg" { return .kmsg }
        if path.hasPrefix("/dev/vfio/devices/") { return try openDeviceNode(String(path.dropFirst(18))) }
        if path.hasPrefix("/dev/vfio/") { return try openGroupNode(String(path.dropFirst(10))) }
        if path.hasPrefix("/dev/uio"), let n = Int(path.dropFirst(8)), String(n) == path.dropFirst(8),
           let u = uioDevices.values.first(where: { $0.index == n }) {
            return .uio(u)
        }
        if path.hasPrefix("/sys/") { return try sysfsOpen(path, flags: flags) }
        throw .noSuchFileOrDirectory
    }

    private func openGroupNode(_ name: String) throws(Errno) -> OpenFile.Kind {
        let prefix = configuration.noIOMMU ? "noiommu-" : ""
        guard name.hasPrefix(prefix), let id = Int(name.dropFirst(prefix.count)), String(id) == name.dropFirst(prefix.count),
              let group = groups[id], !group.vfioDevices.isEmpty
        else { throw .noSuchFileOrDirectory }
        try group.open()
        return .group(group)
    }

    private func openDeviceNode(_ name: String) throws(Errno) -> OpenFile.Kind {
        let prefix = configuration.noIOMMU ? "noiommu-vfio" : "vfio"
        guard configuration.iommufdAvailable, name.hasPrefix(prefix), let n = Int(name.dropFirst(prefix.count)),
              String(n) == name.dropFirst(prefix.count),
              let device = vfioDevices.values.first(where: { $0.index == n })
        else { throw .noSuchFileOrDirectory }
        return .device(DeviceFile(device: device, group: nil))
    }

    /// close(2): a mock file releases what its last close releases in the kernel (a group, a
    /// device, a UIO file), then the device-model calls that scheduled (reset, config writes) run;
    /// a host descriptor is closed on the host, `EINTR` not reported.
    public func close(_ fd: FileDescriptor) throws(Errno) {
        let ours: Bool = lock.withLock {
            guard let file = files.removeValue(forKey: fd.rawValue) else {
                memoryFiles[fd.rawValue] = nil
                return false
            }
            release(file.kind)
            if case .uio(let u) = file.kind {
                u.listeners.removeAll { $0 === file }
                u.lastSeen[ObjectIdentifier(file)] = nil
            }
            Glibc.close(file.placeholder)
            lock.broadcast()
            return true
        }
        runPendingResets()
        if !ours, Glibc.close(fd.rawValue) < 0, errno != EINTR { throw Errno(rawValue: errno) }
    }

    /// What the last close of each kind of file releases in the kernel.
    func release(_ kind: OpenFile.Kind) {
        switch kind {
        case .group(let g): g.release()
        case .device(let df): releaseDevice(df)
        case .uio(let u): u.release()
        default: break
        }
    }

    private func releaseDevice(_ df: DeviceFile) {
        let d = df.device
        if let group = df.group {
            d.openCount -= 1
            if d.openCount == 0 {
                d.disable()
                if case .cdev(let context, let id)? = d.opener { context.unbindDevice(id) }
                d.opener = nil
                d.attachedIOAS = nil
            }
            group.release()
        } else if df.accessGranted {
            d.openCount = 0
            d.disable()
            if case .cdev(let context, let id)? = d.opener { context.unbindDevice(id) }
            d.opener = nil
            d.attachedIOAS = nil
            d.group.cdevOpenCount -= 1
        }
    }
}
