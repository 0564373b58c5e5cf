import SystemPackage
import CVFIO

/// The `vfio_iommu_type1` driver of one container: its DMA mappings, entry limit, page sizes
/// and IOVA ranges, with `vfio_dma_do_map`/`vfio_dma_do_unmap`'s checks and errors.
final class Type1IOMMU {
    /// Opened as `VFIO_TYPE1v2_IOMMU`: unmaps must not bisect a mapping.
    let v2: Bool
    private(set) var table = IOMappingTable()
    private(set) var dmaAvailable: UInt32
    private let entryLimit: UInt32
    let pageSizes: UInt64
    let ranges: [IOVARange]
    private(set) var lockedBytes: UInt64 = 0
    private let padsCapabilities: Bool
    private let writesPadding: Bool

    init(v2: Bool, configuration: MockKernel.Configuration) {
        self.v2 = v2
        dmaAvailable = configuration.dmaEntryLimit
        entryLimit = configuration.dmaEntryLimit
        pageSizes = configuration.iommuPageSizes
        ranges = configuration.iovaRanges
        padsCapabilities = configuration.padsInfoCapabilities
        writesPadding = configuration.profile.writesInfoPadding
    }

    private var minPageSize: UInt64 { pageSizes & (~pageSizes &+ 1) }

    /// `VFIO_IOMMU_MAP_DMA`.
    func map(_ arg: UserPointer, memory: ProcessMemory, memlockLimit: UInt64?, otherLocked: UInt64) throws(Errno) {
        // struct vfio_iommu_type1_dma_map { argsz, flags, vaddr, iova, size }
        let argsz: UInt32 = arg.load(0), flags: UInt32 = arg.load(4)
        let vaddr: UInt64 = arg.load(8), iova: UInt64 = arg.load(16), size: UInt64 = arg.load(24)
        let known = UInt32(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE | VFIO_DMA_MAP_FLAG_VADDR)
        guard argsz >= 32, flags & ~known == 0 else { throw .invalidArgument }
        let readable = flags & UInt32(VFIO_DMA_MAP_FLAG_READ) != 0
        let writable = flags & UInt32(VFIO_DMA_MAP_FLAG_WRITE) != 0
        let setVaddr = flags & UInt32(VFIO_DMA_MAP_FLAG_VADDR) != 0
        guard (readable || writable) != setVaddr else { throw .invalidArgument }
        let mask = minPageSize - 1
        guard size != 0, (size | iova | vaddr) & mask == 0 else { throw .invalidArgument }
        guard iova &+ size &- 1 >= iova, vaddr &+ size &- 1 >= vaddr else { throw .invalidArgument }
        let existing = table.find(iova, iova + (size - 1))
        if setVaddr {
            // The mock never invalidates vaddrs (VFIO_DMA_UNMAP_FLAG_VADDR is refused), so
            // there is no mapping whose vaddr may be replaced.
            throw existing == nil ? .noSuchFileOrDirectory : .invalidArgument
        }
        guard existing == nil else { throw .fileExists }
        guard dmaAvailable > 0 else { throw .noSpace }
        guard ranges.contains(where: { $0.contains(iova, iova + (size - 1)) }) else { throw .invalidArgument }
        guard memory.contains(start: vaddr, length: size) else { throw .badAddress }
        if let limit = memlockLimit, otherLocked + lockedBytes + size > limit { throw .noMemory }
        let pinned = memory.pin(start: vaddr, length: size).map { PinnedRange(pages: $0, offset: 0) }
        table.insert(IOMMUMapping(iova: iova, size: size, vaddr: vaddr, readable: readable, writable: writable, pinned: pinned))
        dmaAvailable -= 1
        lockedBytes += size
    }

    /// `VFIO_IOMMU_UNMAP_DMA`: writes back the number of bytes unmapped.
    func unmap(_ arg: UserPointer) throws(Errno) {
        // struct vfio_iommu_type1_dma_unmap { argsz, flags, iova, size, data[] }
        let argsz: UInt32 = arg.load(0), flags: UInt32 = arg.load(4)
        let iova: UInt64 = arg.load(8)
        var size: UInt64 = arg.load(16)
        let dirty = UInt32(VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP), all = UInt32(VFIO_DMA_UNMAP_FLAG_ALL)
        let vaddrFlag = UInt32(VFIO_DMA_UNMAP_FLAG_VADDR)
        guard argsz >= 24, flags & ~(dirty | all | vaddrFlag) == 0 else { throw .invalidArgument }
        guard flags & dirty == 0 || flags & (all | vaddrFlag) == 0 else { throw .invalidArgument }
        // Dirty tracking is never started and vaddr invalidation is not modelled; the kernel
        // refuses a dirty-bitmap unmap without tracking with EINVAL.
        guard flags & (dirty | vaddrFlag) == 0 else { throw .invalidArgument }
        let mask = minPageSize - 1
        guard iova & mask == 0 else { throw .invalidArgument }
        if flags & all != 0 {
            guard iova == 0, size == 0 else { throw .invalidArgument }
            size = .max
        } else {
            guard size != 0, size & mask == 0, iova &+ size &- 1 >= iova else { throw .invalidArgument }
        }
        let last = size == .max ? UInt64.max : iova + (size - 1)
        if v2 && flags & all == 0 {
            if let m = table.find(iova, iova), m.iova != iova { throw .invalidArgument }
            if let m = table.find(last, last), m.last != last { throw .invalidArgument }
        }
        let removed: UInt64
        if v2 {
            removed = table.remove(iova, last)
        } else if let first = table.intersecting(iova, last).first, first.iova < iova {
            // v1: a request starting inside a mapping unmaps nothing and succeeds.
            removed = 0
        } else {
            removed = table.remove(iova, last)
        }
        arg.store(removed, at: 16)
        dmaAvailable = entryLimit - UInt32(table.count)
        lockedBytes -= removed
    }

    /// `VFIO_IOMMU_GET_INFO`: page sizes plus the migration, DMA-avail and IOVA-range
    /// capabilities in the kernel's order, with the argsz protocol.
    func info(_ arg: UserPointer) throws(Errno) {
        // struct vfio_iommu_type1_info { argsz, flags, iova_pgsizes, cap_offset, pad }: minsz
        // ends at iova_pgsizes.
        var info = try InfoReply(arg, size: 24, minsz: 16, capOffsetEnd: writesPadding ? nil : 20)
        var caps = InfoCapabilityChain(padded: padsCapabilities)
        caps.add(id: UInt16(VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION), version: 1,
                 body: le(UInt32(0)) + le(UInt32(0)) + le(minPageSize) + le(UInt64(1) << 28))
        caps.add(id: UInt16(VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL), version: 1, body: le(dmaAvailable))
        var iovas = le(UInt32(ranges.count)) + le(UInt32(0))
        for r in ranges { iovas += le(r.first) + le(r.last) }
        caps.add(id: UInt16(VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE), version: 1, body: iovas)
        info.store(UInt32(VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS), at: 4)
        info.store(pageSizes, at: 8)
        info.offer(caps, capOffsetField: 16)
        info.copyOut(to: arg)
    }
}
