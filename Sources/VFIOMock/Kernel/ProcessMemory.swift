/// The process memory the mock knows about, and the mock's physical address space.
///
/// Model: memory the framework maps anonymously through the seam (or a test registers) is
/// "process memory". Pinning it for DMA (type1 `MAP_DMA`, `IOMMU_IOAS_MAP`) requires it to
/// be here, as the kernel's `pin_user_pages` requires a mapped VMA (else `EFAULT`). Each
/// region also gets mock physical pages, which `/proc/self/pagemap` reports and which
/// devices reach directly in no-IOMMU and UIO mode. Like real memory, physical pages are
/// contiguous only within one page: 4 KiB pages of a region are laid out in *descending*
/// physical order, so code that assumes contiguity across pages fails here as it would on
/// hardware; a hugetlb mapping is contiguous within each huge page.
///
/// Pinning takes the pages, not the addresses: a region that is a shared mapping (of a memfd)
/// is pinned through a mirror of its pages (``PinnedPages``), so the device reaches them after
/// the process unmapped them or handed them to another process, as with `pin_user_pages`. A
/// private anonymous region cannot be mirrored; the device reaches it through its addresses
/// while it is mapped.
struct ProcessMemory {
    struct Region {
        var start: UInt64
        var length: UInt64
        var pageSize: UInt64
        var physicalBase: UInt64
        /// A shared mapping (of a memfd), whose pages can be pinned by mirroring them.
        var shared: Bool

        var end: UInt64 { start + length }
        var pageCount: UInt64 { length / pageSize }
    }

    private(set) var regions: [Region] = []
    /// Physical memory is handed out from 16 MiB up, as on a small machine, so devices with a
    /// narrow DMA mask (edu: 28 bits) can reach it without an IOMMU.
    private var nextPhysical: UInt64 = 0x100_0000

    /// Registers [start, start+length) backed by pages of `pageSize`; `shared` for a shared
    /// mapping of a memfd.
    mutating func register(start: UInt64, length: UInt64, pageSize: UInt64, shared: Bool = false) {
        let rounded = (length + pageSize - 1) / pageSize * pageSize
        nextPhysical = (nextPhysical + pageSize - 1) / pageSize * pageSize
        let r = Region(start: start, length: rounded, pageSize: pageSize, physicalBase: nextPhysical, shared: shared)
        nextPhysical += rounded
        regions.append(r)
        regions.sort { $0.start < $1.start }
    }

    /// Forgets [start, start+length), splitting regions it cuts, as munmap does.
    mutating func unregister(start: UInt64, length: UInt64) {
        let end = start + length
        var out: [Region] = []
        for r in regions {
            guard r.start < end && start < r.end else { out.append(r); continue }
            if r.start < start {
                var head = r
                head.length = start - r.start
                head.physicalBase = r.physicalBase + (r.pageCount - head.length / r.pageSize) * r.pageSize
                out.append(head)
            }
            if end < r.end {
                var tail = r
                tail.start = end
                tail.length = r.end - end
                out.append(tail)
            }
        }
        regions = out
    }

    /// Whether every byte of [start, start+length) is registered.
    func contains(start: UInt64, length: UInt64) -> Bool {
        var at = start
        let end = start + length
        for r in regions where r.start <= at && at < r.end {
            at = r.end
            if at >= end { return true }
        }
        return at >= end
    }

    /// Pins the pages of [start, start+length) when they lie in one shared region: a mirror of
    /// them that outlives the process's own mapping. Nil for private memory, which is reached
    /// through its addresses.
    func pin(start: UInt64, length: UInt64) -> PinnedPages? {
        guard length > 0, regions.contains(where: { $0.shared && $0.start <= start && start + length <= $0.end }),
              let address = UnsafeMutableRawPointer(bitPattern: UInt(start))
        else { return nil }
        return PinnedPages(mirroring: address, length: Int(length))
    }

    /// The mock physical address of `vaddr`, if it is registered.
    func physicalAddress(of vaddr: UInt64) -> UInt64? {
        guard let r = regions.first(where: { $0.start <= vaddr && vaddr < $0.end }) else { return nil }
        let page = (vaddr - r.start) / r.pageSize
        return r.physicalBase + (r.pageCount - 1 - page) * r.pageSize + (vaddr - r.start) % r.pageSize
    }

    /// The virtual address of mock physical `address` and the bytes left in its page.
    func virtualAddress(ofPhysical address: UInt64) -> (vaddr: UInt64, bytesInPage: UInt64)? {
        for r in regions where r.physicalBase <= address && address < r.physicalBase + r.length {
            let reversedPage = (address - r.physicalBase) / r.pageSize
            let page = r.pageCount - 1 - reversedPage
            let inPage = (address - r.physicalBase) % r.pageSize
            return (r.start + page * r.pageSize + inPage, r.pageSize - inPage)
        }
        return nil
    }
}
