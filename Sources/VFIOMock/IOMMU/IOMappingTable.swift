/// One IOVA → process-memory mapping in the mock IOMMU, with the device's access rights: the
/// kernel's record (`struct vfio_dma`, an iopt area), not the framework's owned ``VFIOKit/DMAMapping``.
public struct IOMMUMapping: Sendable, Equatable {
    /// The mapping's first IOVA.
    public var iova: UInt64
    /// The mapping's length in bytes.
    public var size: UInt64
    /// The process address the IOVA maps to.
    public var vaddr: UInt64
    /// The device may read this memory (`VFIO_DMA_MAP_FLAG_READ`, `IOMMU_IOAS_MAP_READABLE`).
    public var readable: Bool
    /// The device may write this memory.
    public var writable: Bool
    /// The pages pinned at map time when the memory was a shared mapping; nil for private
    /// memory, which the device reaches through ``vaddr``.
    var pinned: PinnedRange?

    init(iova: UInt64, size: UInt64, vaddr: UInt64, readable: Bool, writable: Bool, pinned: PinnedRange? = nil) {
        self.iova = iova
        self.size = size
        self.vaddr = vaddr
        self.readable = readable
        self.writable = writable
        self.pinned = pinned
    }

    var last: UInt64 { iova + (size - 1) }
}

/// The mappings of one IOMMU domain, kept sorted by IOVA and never overlapping.
struct IOMappingTable {
    private(set) var mappings: [IOMMUMapping] = []

    var count: Int { mappings.count }

    /// Index of the first mapping whose last IOVA is at or above `iova`.
    private func firstIndex(endingAtOrAfter iova: UInt64) -> Int {
        var lo = 0, hi = mappings.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if mappings[mid].last < iova { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Some mapping intersecting [first, last], like type1's `vfio_find_dma`.
    func find(_ first: UInt64, _ last: UInt64) -> IOMMUMapping? {
        let i = firstIndex(endingAtOrAfter: first)
        guard i < mappings.count, mappings[i].iova <= last else { return nil }
        return mappings[i]
    }

    /// All mappings intersecting [first, last], in IOVA order.
    func intersecting(_ first: UInt64, _ last: UInt64) -> ArraySlice<IOMMUMapping> {
        let start = firstIndex(endingAtOrAfter: first)
        var end = start
        while end < mappings.count && mappings[end].iova <= last { end += 1 }
        return mappings[start..<end]
    }

    /// Inserts a mapping that the caller has checked overlaps nothing.
    mutating func insert(_ m: IOMMUMapping) {
        mappings.insert(m, at: firstIndex(endingAtOrAfter: m.iova))
    }

    /// Removes exactly the mappings intersecting [first, last]; returns the bytes removed.
    mutating func remove(_ first: UInt64, _ last: UInt64) -> UInt64 {
        let start = firstIndex(endingAtOrAfter: first)
        var end = start
        var bytes: UInt64 = 0
        while end < mappings.count && mappings[end].iova <= last {
            bytes &+= mappings[end].size
            end += 1
        }
        mappings.removeSubrange(start..<end)
        return bytes
    }

    /// Splits the mapping holding `iova` in two so that `iova` is the last IOVA of the first.
    mutating func split(endingAt iova: UInt64) {
        let i = firstIndex(endingAtOrAfter: iova)
        guard i < mappings.count, mappings[i].iova <= iova, mappings[i].last != iova else { return }
        let m = mappings[i]
        let head = iova - m.iova + 1
        mappings[i].size = head
        mappings.insert(
            IOMMUMapping(
                iova: iova + 1, size: m.size - head, vaddr: m.vaddr + head, readable: m.readable, writable: m.writable,
                pinned: m.pinned.map { PinnedRange(pages: $0.pages, offset: $0.offset + head) }),
            at: i + 1)
    }

    /// The mapping holding `iova`.
    func lookup(_ iova: UInt64) -> IOMMUMapping? { find(iova, iova) }
}
