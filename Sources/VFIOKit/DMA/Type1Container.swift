import CVFIO
import Synchronization
import SystemPackage

/// DMA through a VFIO container's type1 IOMMU (VFIO_IOMMU_MAP_DMA). The container's file
/// belongs to the context's ``GroupContainer``, which closes it.
final class Type1Container: DMAMapper {
    private let system: any SystemCalls
    let fd: FileDescriptor
    let iovaRanges: [ClosedRange<UInt64>]
    let iovaAlignment: UInt64
    let mappingLimit: Int

    var translates: Bool { true }

    /// Reads the IOMMU's page sizes, IOVA ranges and mapping budget (VFIO_IOMMU_GET_INFO).
    init(fd: FileDescriptor, system: any SystemCalls) throws(VFIOError) {
        self.system = system
        self.fd = fd
        let info = try attempt(SystemCall("VFIO_IOMMU_GET_INFO")) { () throws(Errno) in try Self.queryInfo(fd: fd, system: system) }
        // The smallest supported page size is the mapping granule.
        iovaAlignment = info.pageSizes == 0 ? 4096 : info.pageSizes & (~info.pageSizes + 1)
        iovaRanges = info.ranges
        mappingLimit = info.available ?? 65535
    }

    /// The IOVA ranges the kernel allows now; a group joining the container may narrow them.
    func currentRanges() throws(VFIOError) -> [ClosedRange<UInt64>] {
        try attempt(SystemCall("VFIO_IOMMU_GET_INFO")) { () throws(Errno) in try Self.queryInfo(fd: fd, system: system).ranges }
    }

    private static func queryInfo(
        fd: FileDescriptor, system: any SystemCalls
    ) throws(Errno)
        -> (pageSizes: UInt64, ranges: [ClosedRange<UInt64>], available: Int?)
    {
        try system.infoIoctl(fd, CVFIO_IOMMU_GET_INFO, size: MemoryLayout<vfio_iommu_type1_info>.size, prepare: { _ in }) { raw in
            let info = raw.load(as: vfio_iommu_type1_info.self)
            var ranges: [ClosedRange<UInt64>] = []
            var available: Int?
            if info.flags & UInt32(VFIO_IOMMU_INFO_CAPS) != 0 {
                walkInfoCapabilities(raw, first: Int(info.cap_offset)) { id, _, offset in
                    let body = offset + MemoryLayout<vfio_info_cap_header>.size
                    switch Int32(id) {
                    case VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE where body + 8 <= raw.count:
                        // Only the ranges that are in the buffer.
                        let n = min(Int(raw.loadUnaligned(fromByteOffset: body, as: UInt32.self)), (raw.count - body - 8) / 16)
                        for i in 0..<n {
                            let start = raw.loadUnaligned(fromByteOffset: body + 8 + 16 * i, as: UInt64.self)
                            let end = raw.loadUnaligned(fromByteOffset: body + 16 + 16 * i, as: UInt64.self)
                            if start <= end { ranges.append(start...end) }
                        }
                    case VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL where body + 4 <= raw.count:
                        available = Int(raw.loadUnaligned(fromByteOffset: body, as: UInt32.self))
                    default:
                        break
                    }
                }
            }
            let pageSizes = info.flags & UInt32(VFIO_IOMMU_INFO_PGSIZES) != 0 ? info.iova_pgsizes : 0
            return (pageSizes, ranges.isEmpty ? [0...UInt64.max] : ranges.sorted { $0.lowerBound < $1.lowerBound }, available)
        }
    }

    func map(_ memory: UnsafeMutableRawBufferPointer, at iova: UInt64) throws(VFIOError) -> UInt64 {
        var map = vfio_iommu_type1_dma_map()
        map.argsz = UInt32(MemoryLayout<vfio_iommu_type1_dma_map>.size)
        map.flags = UInt32(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)
        map.vaddr = UInt64(UInt(bitPattern: memory.baseAddress))
        map.iova = iova
        map.size = UInt64(memory.count)
        try attempt(SystemCall("VFIO_IOMMU_MAP_DMA", detail: "iova 0x\(String(iova, radix: 16)), \(memory.count) bytes")) {
            () throws(Errno) in
            try system.ioctl(fd, CVFIO_IOMMU_MAP_DMA, &map)
        }
        return iova
    }

    func unmap(iova: UInt64, length: Int) throws(VFIOError) {
        var unmap = vfio_iommu_type1_dma_unmap()
        unmap.argsz = UInt32(MemoryLayout<vfio_iommu_type1_dma_unmap>.size)
        unmap.iova = iova
        unmap.size = UInt64(length)
        try attempt(SystemCall("VFIO_IOMMU_UNMAP_DMA", detail: "iova 0x\(String(iova, radix: 16))")) { () throws(Errno) in
            try system.ioctl(fd, CVFIO_IOMMU_UNMAP_DMA, &unmap)
        }
        // Type1 reports how much it unmapped; less than asked means no mapping was there.
        guard unmap.size == UInt64(length) else { throw .unknownMapping(iova: iova, length: length) }
    }

    /// Nothing to release: the container's file is the context's.
    func close() {}
}
