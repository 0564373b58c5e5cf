#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import PCI
import Synchronization
import SystemPackage

/// An iommufd IO address space (IOAS) that any number of VFIO cdevs attach to: a mapping made
/// here is seen by every attached device. Owns the `/dev/iommu` file.
final class IOMMUFDAddressSpace: DMAMapper {
    private let system: any SystemCalls
    /// The `/dev/iommu` fd.
    let fd: FileDescriptor
    let ioasID: UInt32
    private let closed = Atomic<Bool>(false)

    var translates: Bool { true }
    /// iommufd has no per-mapping cap; memory pinning is bounded by RLIMIT_MEMLOCK instead.
    var mappingLimit: Int { Int(Int32.max) }

    /// Opens `/dev/iommu` and allocates an IOAS in it.
    init(system: any SystemCalls) throws(VFIOError) {
        self.system = system
        let opened: FileDescriptor
        do {
            opened = try system.open(SysfsLayout.absolute(SysfsLayout.iommufd), O_RDWR)
        } catch .noSuchFileOrDirectory {
            throw .backendUnavailable(
                .iommufd, reason: "/dev/iommu does not exist: the kernel has no iommufd (CONFIG_IOMMUFD); use the legacy backend")
        } catch {
            throw error.vfio(SystemCall("open", path: SysfsLayout.absolute(SysfsLayout.iommufd)))
        }
        // On a failure below it closes as it goes out of scope.
        let fd = OwnedFileDescriptor(opened, name: "/dev/iommu", system: system)
        var alloc = iommu_ioas_alloc()
        alloc.size = UInt32(MemoryLayout<iommu_ioas_alloc>.size)
        try attempt(SystemCall("IOMMU_IOAS_ALLOC")) { () throws(Errno) in try system.ioctl(fd.rawValue, CVFIO_IOMMUFD_IOAS_ALLOC, &alloc) }
        self.fd = fd.release()
        ioasID = alloc.out_ioas_id
    }

    /// Binds the cdev `device` of `address` to this iommufd and attaches it to the IOAS, then
    /// returns the IOVA ranges and alignment, which each attachment narrows to what the devices'
    /// IOMMUs allow. The kernel refuses the bind with EPERM while a host driver owns part of
    /// the device's IOMMU group `group`: that is ``VFIOError/groupNotViable(group:_:)``.
    func attach(
        device: FileDescriptor, address: PCIAddress, group: Int?
    ) throws(VFIOError) -> (ranges: [ClosedRange<UInt64>], alignment: UInt64) {
        var bind = vfio_device_bind_iommufd()
        bind.argsz = UInt32(MemoryLayout<vfio_device_bind_iommufd>.size)
        bind.iommufd = fd.rawValue
        do {
            try system.ioctl(device, CVFIO_DEVICE_BIND_IOMMUFD, &bind)
        } catch {
            if error == .notPermitted, let group { throw .groupNotViable(group: group, address) }
            throw error.vfio(SystemCall("VFIO_DEVICE_BIND_IOMMUFD", device: address))
        }
        var attach = vfio_device_attach_iommufd_pt()
        attach.argsz = UInt32(MemoryLayout<vfio_device_attach_iommufd_pt>.size)
        attach.pt_id = ioasID
        try attempt(SystemCall("VFIO_DEVICE_ATTACH_IOMMUFD_PT", device: address, detail: "ioas \(ioasID)")) { () throws(Errno) in
            try system.ioctl(device, CVFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach)
        }
        return try attempt(SystemCall("IOMMU_IOAS_IOVA_RANGES")) { () throws(Errno) in
            try Self.readRanges(iommufd: fd, ioas: ioasID, system: system)
        }
    }

    /// IOMMU_IOAS_IOVA_RANGES: asks with no room first; the kernel answers EMSGSIZE with the count.
    private static func readRanges(
        iommufd: FileDescriptor, ioas: UInt32, system: any SystemCalls
    ) throws(Errno)
        -> ([ClosedRange<UInt64>], UInt64)
    {
        var query = iommu_ioas_iova_ranges()
        query.size = UInt32(MemoryLayout<iommu_ioas_iova_ranges>.size)
        query.ioas_id = ioas
        var ranges: [iommu_iova_range] = []
        while true {
            let capacity = ranges.count
            do {
                try ranges.withUnsafeMutableBufferPointer { (p) throws(Errno) in
                    query.num_iovas = UInt32(capacity)
                    query.allowed_iovas = UInt64(UInt(bitPattern: p.baseAddress))
                    try system.ioctl(iommufd, CVFIO_IOMMUFD_IOAS_IOVA_RANGES, &query)
                }
                break
            } catch .messageTooLong where Int(query.num_iovas) > capacity && capacity < 4096 {
                ranges = Array(repeating: iommu_iova_range(), count: Int(query.num_iovas))
            }
        }
        let valid = ranges.prefix(Int(query.num_iovas)).filter { $0.start <= $0.last }.map { $0.start...$0.last }
        return (valid, Swift.max(query.out_iova_alignment, 1))
    }

    func map(_ memory: UnsafeMutableRawBufferPointer, at iova: UInt64) throws(VFIOError) -> UInt64 {
        var map = iommu_ioas_map()
        map.size = UInt32(MemoryLayout<iommu_ioas_map>.size)
        map.flags = UInt32(IOMMU_IOAS_MAP_FIXED_IOVA.rawValue | IOMMU_IOAS_MAP_READABLE.rawValue | IOMMU_IOAS_MAP_WRITEABLE.rawValue)
        map.ioas_id = ioasID
        map.user_va = UInt64(UInt(bitPattern: memory.baseAddress))
        map.length = UInt64(memory.count)
        map.iova = iova
        try attempt(SystemCall("IOMMU_IOAS_MAP", detail: "iova 0x\(String(iova, radix: 16)), \(memory.count) bytes")) { () throws(Errno) in
            try system.ioctl(fd, CVFIO_IOMMUFD_IOAS_MAP, &map)
        }
        return map.iova
    }

    func unmap(iova: UInt64, length: Int) throws(VFIOError) {
        var unmap = iommu_ioas_unmap()
        unmap.size = UInt32(MemoryLayout<iommu_ioas_unmap>.size)
        unmap.ioas_id = ioasID
        unmap.iova = iova
        unmap.length = UInt64(length)
        do {
            try system.ioctl(fd, CVFIO_IOMMUFD_IOAS_UNMAP, &unmap)
        } catch .noSuchFileOrDirectory {
            throw .unknownMapping(iova: iova, length: length)
        } catch {
            throw error.vfio(SystemCall("IOMMU_IOAS_UNMAP", detail: "iova 0x\(String(iova, radix: 16))"))
        }
    }

    /// Destroys the IOAS and closes `/dev/iommu`; safe to call twice.
    func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var destroy = iommu_destroy()
        destroy.size = UInt32(MemoryLayout<iommu_destroy>.size)
        destroy.id = ioasID
        // Neither can fail in a way the caller could act on: closing the iommufd destroys the
        // IOAS anyway (the destroy only orders it first), /dev/iommu has nothing to flush, and
        // Linux releases the descriptor even when close reports an error.
        _ = try? system.ioctl(fd, CVFIO_IOMMUFD_DESTROY, &destroy)
        try? system.close(fd)
    }
}
