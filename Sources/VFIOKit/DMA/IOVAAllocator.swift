/// Hands out IOVA ranges inside the kernel's allowed ranges, aligned, and never more
/// mappings at once than the kernel's limit.
///
/// First fit over a sorted list of free ranges; freeing coalesces neighbours. IOVA 0's page
/// is never handed out, so a zero DMA address always means "unset". Not thread-safe: ``DMASpace``
/// serialises access.
public struct IOVAAllocator: Sendable {
    /// Free ranges, sorted and disjoint, half-open.
    fileprivate var free: [Range<UInt64>]
    private var live: [UInt64: UInt64] = [:]
    /// Every range handed out starts on a multiple of this (a power of two) and is rounded up to it.
    public let alignment: UInt64
    /// The most ranges live at once (the kernel's DMA mapping limit); an allocation beyond it throws
    /// ``VFIOError/dmaMappingLimit(_:)``.
    public let mappingLimit: Int

    /// `ranges` are inclusive, as the kernel reports them; `alignment` must be a power of two.
    public init(ranges: [ClosedRange<UInt64>], alignment: UInt64, mappingLimit: Int) {
        precondition(alignment > 0 && alignment & (alignment - 1) == 0, "IOVA alignment must be a power of two")
        self.alignment = alignment
        self.mappingLimit = mappingLimit
        var free: [Range<UInt64>] = []
        for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            let start = Swift.max(Self.roundUp(r.lowerBound, alignment) ?? .max, alignment)
            let end = r.upperBound == .max ? UInt64.max & ~(alignment - 1) : (r.upperBound + 1) & ~(alignment - 1)
            if start < end { free.append(start..<end) }
        }
        self.free = free
    }

    /// How many ranges are allocated now.
    public var count: Int { live.count }

    /// Reserves `size` bytes (rounded up to the alignment) ending at or below `limit`
    /// (exclusive), for a device that cannot address more.
    public mutating func allocate(size: Int, below limit: UInt64 = .max) throws(VFIOError) -> UInt64 {
        guard live.count < mappingLimit else { throw .dmaMappingLimit(mappingLimit) }
        guard size > 0, let length = Self.roundUp(UInt64(size), alignment) else {
            throw .iovaSpaceExhausted(size: size, limit: limit)
        }
        for (i, r) in free.enumerated() {
            let end = Swift.min(r.upperBound, limit)
            guard end > r.lowerBound, end - r.lowerBound >= length else { continue }
            let iova = r.lowerBound
            if iova + length == r.upperBound { free.remove(at: i) } else { free[i] = iova + length..<r.upperBound }
            live[iova] = length
            return iova
        }
        throw .iovaSpaceExhausted(size: size, limit: limit)
    }

    /// Reserves exactly `size` bytes (rounded up to the alignment) at `iova`, for memory a
    /// predecessor mapped there. Throws ``VFIOError/iovaUnavailable(iova:size:reason:)`` when
    /// `iova` is misaligned or any byte of the range is in use or outside the allowed ranges.
    public mutating func reserve(_ iova: UInt64, size: Int) throws(VFIOError) {
        guard live.count < mappingLimit else { throw .dmaMappingLimit(mappingLimit) }
        guard size > 0, iova % alignment == 0, let length = Self.roundUp(UInt64(size), alignment) else {
            throw .iovaUnavailable(iova: iova, size: size, reason: "it is not a positive size at a multiple of \(alignment) bytes")
        }
        let (end, overflow) = iova.addingReportingOverflow(length)
        guard !overflow, let i = free.firstIndex(where: { $0.lowerBound <= iova && end <= $0.upperBound }) else {
            let inUse = live.contains { $0.key < end && iova < $0.key + $0.value }
            throw .iovaUnavailable(
                iova: iova, size: size, reason: inUse ? "it overlaps a range already in use" : "it lies outside the IOMMU's IOVA ranges")
        }
        let r = free[i]
        free.replaceSubrange(i...i, with: [r.lowerBound..<iova, end..<r.upperBound].filter { !$0.isEmpty })
        live[iova] = length
    }

    /// Returns a range from ``allocate(size:below:)`` or ``reserve(_:size:)``; anything else is an error.
    public mutating func release(_ iova: UInt64) throws(VFIOError) {
        guard let length = live.removeValue(forKey: iova) else { throw .unknownMapping(iova: iova, length: 0) }
        var range = iova..<iova + length
        let i = free.firstIndex { $0.lowerBound > iova } ?? free.endIndex
        if i < free.endIndex, free[i].lowerBound == range.upperBound {
            range = range.lowerBound..<free[i].upperBound
            free.remove(at: i)
        }
        if i > 0, free[i - 1].upperBound == range.lowerBound {
            free[i - 1] = free[i - 1].lowerBound..<range.upperBound
        } else {
            free.insert(range, at: i)
        }
    }

    /// The length reserved at `iova`, if it is live.
    public func length(at iova: UInt64) -> UInt64? { live[iova] }

    static func roundUp(_ value: UInt64, _ alignment: UInt64) -> UInt64? {
        let (sum, overflow) = value.addingReportingOverflow(alignment - 1)
        return overflow ? nil : sum & ~(alignment - 1)
    }
}

extension IOVAAllocator {
    /// Keeps only the free space inside `ranges` (inclusive), after the kernel narrowed what it
    /// allows; live ranges are the kernel's to have refused.
    public mutating func restrict(to ranges: [ClosedRange<UInt64>]) {
        free = free.flatMap { f in
            ranges.compactMap { r -> Range<UInt64>? in
                let lower = Swift.max(f.lowerBound, r.lowerBound)
                let upper = r.upperBound == .max ? f.upperBound : Swift.min(f.upperBound, r.upperBound + 1)
                return lower < upper ? lower..<upper : nil
            }
        }.sorted { $0.lowerBound < $1.lowerBound }
    }

    /// The parts two lists of inclusive ranges have in common.
    static func intersect(_ a: [ClosedRange<UInt64>], _ b: [ClosedRange<UInt64>]) -> [ClosedRange<UInt64>] {
        a.flatMap { x in b.compactMap { y in x.overlaps(y) ? Swift.max(x.lowerBound, y.lowerBound)...Swift.min(x.upperBound, y.upperBound) : nil } }
            .sorted { $0.lowerBound < $1.lowerBound }
    }
}
