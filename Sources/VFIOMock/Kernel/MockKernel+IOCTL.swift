#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import PCI
import SystemPackage

/// ioctl(2) on the mock's files. A descriptor the mock did not hand out goes to the host.
extension MockKernel {
    /// ioctl(2): on a container, group, device or iommufd file, what the kernel's VFIO and iommufd
    /// do (`ENOTTY` on other mock files); a descriptor the mock did not hand out goes to the host.
    public func ioctl(_ fd: FileDescriptor, _ request: UInt, _ argument: UInt) throws(Errno) -> Int32 {
        let result = try lock.withLock { () throws(Errno) -> Int32? in
            guard let file = files[fd.rawValue] else { return nil }
            switch file.kind {
            case .container(let c):
                let locked = c.type1?.lockedBytes ?? 0
                return try c.ioctl(request, argument, memory: memory, otherLocked: totalLockedBytes() - locked)
            case .group(let g): return try groupIOCTL(g, request, argument)
            case .device(let df): return try deviceIOCTL(df, request, argument)
            case .iommufd(let ctx): return try ctx.ioctl(request, argument, memory: memory)
            default: throw .inappropriateIOCTLForDevice
            }
        }
        runPendingResets()
        if let result { return result }
        let r = cvfio_ioctl(fd.rawValue, request, argument)
        if r < 0 { throw Errno(rawValue: errno) }
        return r
    }

    /// Bytes pinned by all type1 containers, for RLIMIT_MEMLOCK.
    private func totalLockedBytes() -> UInt64 {
        var seen: Set<ObjectIdentifier> = []
        var total: UInt64 = 0
        for g in groups.values {
            guard let c = g.container, seen.insert(ObjectIdentifier(c)).inserted else { continue }
            total += c.type1?.lockedBytes ?? 0
        }
        return total
    }

    private func groupIOCTL(_ g: MockGroup, _ request: UInt, _ argument: UInt) throws(Errno) -> Int32 {
        switch request {
        case UInt(CVFIO_GROUP_GET_STATUS):
            try g.status(UserPointer(argument), drivers: drivers)
            return 0
        case UInt(CVFIO_GROUP_SET_CONTAINER):
            let fd: Int32 = try UserPointer(argument).load(0)
            guard let file = files[fd] else {
                guard fd >= 0, fcntl(fd, F_GETFD) >= 0 else { throw .badFileDescriptor }
                throw .badFileDescriptorState
            }
            switch file.kind {
            case .container(let c): try g.setContainer(c, drivers: drivers)
            case .iommufd(let ctx): try g.setIOMMUFD(ctx)
            default: throw .badFileDescriptorState
            }
            return 0
        case UInt(CVFIO_GROUP_UNSET_CONTAINER):
            try g.unsetContainer()
            return 0
        case UInt(CVFIO_GROUP_GET_DEVICE_FD):
            guard let p = UnsafePointer<CChar>(bitPattern: argument) else { throw .badAddress }
            let name = String(cString: p)
            let device = try g.deviceForOpen(named: name)
            if device.openCount == 0, let ctx = g.iommufd {
                // vfio_df_group_open on an iommufd: bind (claiming DMA ownership) and attach
                // to the compat IOAS (vfio_iommufd_compat_attach_ioas).
                guard !g.claimedByKernelDriver(drivers: drivers) else { throw .notPermitted }
                let id = ctx.bindDevice(device.address)
                guard let compat = ctx.compatIOAS, let (_, ioas) = try? ctx.attach(device: id, to: compat) else {
                    ctx.unbindDevice(id)
                    throw .operationNotSupportedByDevice
                }
                device.opener = .cdev(context: ctx, deviceID: id)
                device.attachedIOAS = ioas
            } else if device.openCount == 0 {
                device.opener = .group
            }
            device.openCount += 1
            if device.openCount == 1 { device.enable(aloneOnChildBus: aloneOnChildBus(device.address)) }
            g.fileReferences += 1
            return try install(.device(DeviceFile(device: device, group: g)), flags: O_RDWR)
        default:
            throw .inappropriateIOCTLForDevice
        }
    }

    private func deviceIOCTL(_ df: DeviceFile, _ request: UInt, _ argument: UInt) throws(Errno) -> Int32 {
        let d = df.device
        if request == UInt(CVFIO_DEVICE_BIND_IOMMUFD) {
            try bindIOMMUFD(df, UserPointer(argument))
            return 0
        }
        guard df.accessGranted else { throw .invalidArgument }
        if df.group == nil {
            switch request {
            case UInt(CVFIO_DEVICE_ATTACH_IOMMUFD_PT):
                try attachPT(df, UserPointer(argument))
                return 0
            case UInt(CVFIO_DEVICE_DETACH_IOMMUFD_PT):
                let arg = try UserPointer(argument)
                guard arg.load(0, as: UInt32.self) >= 8, arg.load(4, as: UInt32.self) == 0 else { throw .invalidArgument }
                if case .cdev(let ctx, let id)? = d.opener { ctx.detach(device: id) }
                d.attachedIOAS = nil
                return 0
            default: break
            }
        }
        switch request {
        case UInt(CVFIO_DEVICE_GET_INFO): try d.deviceInfo(UserPointer(argument))
        case UInt(CVFIO_DEVICE_GET_REGION_INFO): try d.regionInfo(UserPointer(argument))
        case UInt(CVFIO_DEVICE_GET_IRQ_INFO): try d.irqInfo(UserPointer(argument))
        case UInt(CVFIO_DEVICE_SET_IRQS): try d.setIRQs(UserPointer(argument))
        case UInt(CVFIO_DEVICE_RESET):
            guard d.resetWorks else { throw .invalidArgument }
            d.resetPreservingConfig()
        case UInt(CVFIO_DEVICE_FEATURE): try d.deviceFeature(UserPointer(argument))
        default: throw .inappropriateIOCTLForDevice
        }
        return 0
    }

    /// `vfio_df_ioctl_bind_iommufd`.
    private func bindIOMMUFD(_ df: DeviceFile, _ arg: UserPointer) throws(Errno) {
        let argsz: UInt32 = arg.load(0), flags: UInt32 = arg.load(4), iommufd: Int32 = arg.load(8)
        guard argsz >= 16, flags == 0, iommufd >= 0, df.group == nil else { throw .invalidArgument }
        let d = df.device
        guard d.group.fileReferences == 0 else { throw .resourceBusy }
        guard !df.accessGranted else { throw .invalidArgument }
        guard let file = files[iommufd] else {
            guard fcntl(iommufd, F_GETFD) >= 0 else { throw .badFileDescriptor }
            throw .badFileDescriptorState
        }
        guard case .iommufd(let ctx) = file.kind else { throw .badFileDescriptorState }
        guard d.openCount == 0 else { throw .invalidArgument }
        var deviceID: UInt32 = 0
        if !d.group.isNoIOMMU {
            guard !d.group.claimedByKernelDriver(drivers: drivers) else { throw .notPermitted }
            guard !d.group.dmaOwnedByOtherIOMMUFD(than: ctx) else { throw .notPermitted }
            deviceID = ctx.bindDevice(d.address)
        }
        d.group.cdevOpenCount += 1
        d.openCount = 1
        d.opener = .cdev(context: ctx, deviceID: deviceID)
        d.enable(aloneOnChildBus: aloneOnChildBus(d.address))
        arg.store(deviceID, at: 12)
        df.accessGranted = true
    }

    /// `vfio_df_ioctl_attach_pt`.
    private func attachPT(_ df: DeviceFile, _ arg: UserPointer) throws(Errno) {
        guard arg.load(0, as: UInt32.self) >= 12, arg.load(4, as: UInt32.self) == 0 else { throw .invalidArgument }
        let d = df.device
        guard case .cdev(let ctx, let id)? = d.opener, !d.group.isNoIOMMU else { throw .invalidArgument }
        let (hwpt, ioas) = try ctx.attach(device: id, to: arg.load(8))
        d.attachedIOAS = ioas
        arg.store(hwpt, at: 8)
    }

    /// Whether `address` is the only function on its bus and that bus is not the root bus
    /// (bus 0 of its domain): `pci_parent_bus_reset`'s condition. Under the lock.
    func aloneOnChildBus(_ address: PCIAddress) -> Bool {
        guard address.bus != 0 else { return false }
        return !functions.keys.contains { (other: PCIAddress) -> Bool in
            other != address && other.domain == address.domain && other.bus == address.bus
        }
    }
}
