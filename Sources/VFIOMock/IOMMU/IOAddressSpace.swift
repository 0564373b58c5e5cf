import SystemPackage
/// An iommufd IOAS: an IO page table the process fills with `IOMMU_IOAS_MAP` and attaches
/// devices to. Follows `drivers/iommu/iommufd/io_pagetable.c`: with no device attached every
/// IOVA is allowed and the alignment is one byte; attaching a device reserves what its
/// IOMMU cannot translate and raises the alignment to the IOMMU page.
final class IOAddressSpace {
    let id: UInt32
    private(set) var table = IOMappingTable()
    private(set) var attachedDevices: Set<UInt32> = []
    private let deviceRanges: [IOVARange]
    private let pageSize: UInt64 = 4096

    init(id: UInt32, deviceRanges: [IOVARange]) {
        self.id = id
        self.deviceRanges = deviceRanges
    }

    var alignment: UInt64 { attachedDevices.isEmpty ? 1 : pageSize }

    /// The usable IOVA ranges: the holes between reserved regions.
    var allowedRanges: [IOVARange] {
        attachedDevices.isEmpty ? [IOVARange(first: 0, last: .max)] : deviceRanges
    }

    private func reserved(_ first: UInt64, _ last: UInt64) -> Bool {
        !allowedRanges.contains { $0.contains(first, last) }
    }

    /// Attaches a device: fails with `EADDRINUSE` if an existing mapping falls in what the
    /// device reserves or is not aligned to its IOMMU page, as `iopt_table_add_domain` does.
    func attach(device: UInt32) throws(Errno) {
        if attachedDevices.isEmpty {
            for m in table.mappings {
                guard deviceRanges.contains(where: { $0.contains(m.iova, m.last) }),
                      (m.iova | m.size | m.vaddr) & (pageSize - 1) == 0
                else { throw .addressInUse }
            }
        }
        attachedDevices.insert(device)
    }

    func detach(device: UInt32) { attachedDevices.remove(device) }

    /// `iopt_map_user_pages`: maps at `iova` (fixed) or at an IOVA it chooses, returned.
    /// `pinned` holds the pages when they are a shared mapping.
    func map(vaddr: UInt64, length: UInt64, iova fixed: UInt64?, readable: Bool, writable: Bool, pinned: PinnedPages?) throws(Errno) -> UInt64 {
        guard length != 0, length & (alignment - 1) == 0, (vaddr % pageSize) & (alignment - 1) == 0 else {
            throw .invalidArgument
        }
        let iova: UInt64
        if let fixed {
            guard fixed & (alignment - 1) == 0 else { throw .invalidArgument }
            guard fixed &+ (length - 1) >= fixed else { throw .overflow }
            guard !reserved(fixed, fixed + (length - 1)) else { throw .invalidArgument }
            guard table.find(fixed, fixed + (length - 1)) == nil else { throw .fileExists }
            iova = fixed
        } else {
            iova = try allocate(length: length, vaddr: vaddr)
        }
        table.insert(
            IOMMUMapping(iova: iova, size: length, vaddr: vaddr, readable: readable, writable: writable, pinned: pinned.map { PinnedRange(pages: $0, offset: 0) }))
        return iova
    }

    /// `iopt_alloc_iova`: the lowest IOVA, never 0, that keeps the vaddr's alignment (up to
    /// 2 MiB) and its offset in the page, in a hole of the allowed ranges.
    private func allocate(length: UInt64, vaddr: UInt64) throws(Errno) -> UInt64 {
        guard length < UInt64.max / 2 else { throw .overflow }
        let pow2 = length <= 1 ? 1 : UInt64(1) << UInt64(64 - (length - 1).leadingZeroBitCount)
        var align = vaddr == 0 ? pow2 : min(pow2, UInt64(1) << UInt64(vaddr.trailingZeroBitCount))
        align = min(align, 2 << 20)
        guard align >= alignment else { throw .invalidArgument }
        let pageOffset = vaddr % pageSize
        for range in allowedRanges {
            var start = max(range.first, pageSize)
            let end = min(range.last, UInt64.max - pageSize)
            guard start <= end else { continue }
            for used in table.intersecting(start, end) + [IOMMUMapping(iova: end &+ 1, size: 1, vaddr: 0, readable: false, writable: false)] {
                let holeLast = used.iova &- 1
                if let candidate = fit(start, holeLast, length, align, pageOffset) { return candidate }
                start = used.last &+ 1
                if start == 0 || start > end { break }
            }
        }
        throw .noSpace
    }

    private func fit(_ first: UInt64, _ last: UInt64, _ length: UInt64, _ align: UInt64, _ offset: UInt64) -> UInt64? {
        guard first <= last else { return nil }
        let (up, overflow) = first.addingReportingOverflow(align - 1)
        guard !overflow else { return nil }
        let aligned = (up & ~(align - 1)) | offset
        guard aligned < last, last - aligned >= length - 1 else { return nil }
        return aligned
    }

    /// `iopt_unmap_iova`: the range must cover whole mappings (`ENOENT` otherwise).
    func unmap(first: UInt64, last: UInt64) throws(Errno) -> UInt64 {
        for m in table.intersecting(first, last) where m.iova < first || m.last > last { throw .noSuchFileOrDirectory }
        return table.remove(first, last)
    }

    func unmapAll() -> UInt64 { table.remove(0, .max) }

    /// `iopt_cut_iova`: splits the mapping holding `iova` so that `iova` ends a piece.
    func cut(at iova: UInt64) { table.split(endingAt: iova) }
}
