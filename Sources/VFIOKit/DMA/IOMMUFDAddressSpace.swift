import CVFIO
import Synchronization
import SystemPackage

/// An iommufd IO address space (IOAS) with a VFIO cdev attached to it.
final class IOMMUFDAddressSpace: DMAMapper {
    private let system: any SystemCalls
    /// The `/dev/iommu` fd.
    let fd: FileDescriptor
    let ioasID: UInt32
    let iovaRanges: [ClosedRange<UInt64>]
    let iovaAlignment: UInt64
    private let closed = Atomic<Bool>(false)

    var translates: Bool { true }
    /// iommufd has no per-mapping cap; memory pinning is bounded by RLIMIT_MEMLOCK instead.
    var mappingLimit: Int { Int(Int32.max) }

    /// Binds `device` to `iommufd` (taking ownership of that fd), allocates an IOAS, attaches
    /// the device to it, then reads the IOVA ranges, which attaching narrows to what the
    /// device's IOMMU allows. On failure the iommufd side is released again.
    init(iommufd: FileDescriptor, device: FileDescriptor, system: any SystemCalls) throws(VFIOError) {
        self.system = system
        self.fd = iommufd
        var bind = vfio_device_bind_iommufd()
        bind.argsz = UInt32(MemoryLayout<vfio_device_bind_iommufd>.size)
        bind.iommufd = iommufd.rawValue
        var alloc = iommu_ioas_alloc()
        alloc.size = UInt32(MemoryLayout<iommu_ioas_alloc>.size)
        do {
            try attempt("VFIO_DEVICE_BIND_IOMMUFD") { () throws(Errno) in try system.ioctl(device, CVFIO_DEVICE_BIND_IOMMUFD, &bind) }
            try attempt("IOMMU_IOAS_ALLOC") { () throws(Errno) in try system.ioctl(iommufd, CVFIO_IOMMUFD_IOAS_ALLOC, &alloc) }
        } catch {
            try? system.close(iommufd)
            throw error
        }
        ioasID = alloc.out_ioas_id
        do {
            var attach = vfio_device_attach_iommufd_pt()
            attach.argsz = UInt32(MemoryLayout<vfio_device_attach_iommufd_pt>.size)
            attach.pt_id = alloc.out_ioas_id
            try attempt("VFIO_DEVICE_ATTACH_IOMMUFD_PT(ioas \(alloc.out_ioas_id))") { () throws(Errno) in
                try system.ioctl(device, CVFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach)
            }
            (iovaRanges, iovaAlignment) = try attempt("IOMMU_IOAS_IOVA_RANGES") { () throws(Errno) in
                try Self.readRanges(iommufd: iommufd, ioas: alloc.out_ioas_id, system: system)
            }
        } catch {
            Self.destroy(iommufd: iommufd, ioas: alloc.out_ioas_id, system: system)
            throw error
        }
    }

    /// IOMMU_IOAS_IOVA_RANGES: asks with no room first; the kernel answers EMSGSIZE with the count.
    private static func readRanges(iommufd: FileDescriptor, ioas: UInt32, system: any SystemCalls) throws(Errno)
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

    private static func destroy(iommufd: FileDescriptor, ioas: UInt32, system: any SystemCalls) {
        var destroy = iommu_destroy()
        destroy.size = UInt32(MemoryLayout<iommu_destroy>.size)
        destroy.id = ioas
        _ = try? system.ioctl(iommufd, CVFIO_IOMMUFD_DESTROY, &destroy)
        try? system.close(iommufd)
    }

    func map(_ memory: UnsafeMutableRawBufferPointer, at iova: UInt64) throws(VFIOError) -> UInt64 {
        var map = iommu_ioas_map()
        map.size = UInt32(MemoryLayout<iommu_ioas_map>.size)
        map.flags = UInt32(IOMMU_IOAS_MAP_FIXED_IOVA.rawValue | IOMMU_IOAS_MAP_READABLE.rawValue | IOMMU_IOAS_MAP_WRITEABLE.rawValue)
        map.ioas_id = ioasID
        map.user_va = UInt64(UInt(bitPattern: memory.baseAddress))
        map.length = UInt64(memory.count)
        map.iova = iova
        try attempt("IOMMU_IOAS_MAP(iova 0x\(String(iova, radix: 16)), \(memory.count) bytes)") { () throws(Errno) in
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
            throw error.vfio("IOMMU_IOAS_UNMAP(iova 0x\(String(iova, radix: 16)))")
        }
    }

    func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        Self.destroy(iommufd: fd, ioas: ioasID, system: system)
    }
}
