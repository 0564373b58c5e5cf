/// A typed view of a region's registers, made by ``Region/mmio(_:)``.
///
/// The view keeps its region, and so the device, alive: a function may return only
/// `try device.bar(0).mmio(...)`. Like swift-nio's `ByteBuffer`, copying the view retains the
/// region and accessing through it does not: the base pointer is cached in the view. After the
/// device is closed or removed, reads return all ones and writes reach no device (see ``Region``).
///
/// When the region is mapped, each access is one volatile load or store: no allocation,
/// no reference counting, no system call. When it cannot be mapped (a trapped region, or a
/// layout crossing an unmappable hole), the same calls go through pread/pwrite. A failed
/// trapped read returns all ones, as a PCI read to a vanished device does; every failed
/// trapped access is counted in ``Region/accessErrors``, and the first is kept for
/// ``Region/checkAccesses()``, which an operation that must know calls after its accesses.
public struct MMIO<Layout: RegisterLayout>: @unchecked Sendable {
    @usableFromInline let base: UnsafeMutableRawPointer?
    /// The region the view reads, kept alive by the view.
    public let region: Region

    init(base: UnsafeMutableRawPointer?, region: Region) {
        self.base = base
        self.region = region
    }

    /// True when accesses are direct loads and stores.
    public var isMapped: Bool { base != nil }

    /// Reads `register`: one volatile load of its width when mapped, else one pread.
    @inlinable @inline(__always)
    public func read<V>(_ register: Register<Layout, V>) -> V {
        if let base { return V.volatileLoad(base + register.offset) }
        return trappedRead(at: register.offset)
    }

    /// Writes `register`: one volatile store of its width when mapped, else one pwrite. Stores
    /// are not reordered with other MMIO accesses; order them against DMA memory with
    /// ``MemoryBarrier``.
    @inlinable @inline(__always)
    public func write<V>(_ register: Register<Layout, V>, _ value: V) {
        if let base { return V.volatileStore(base + register.offset, value) }
        trappedWrite(value, at: register.offset)
    }

    // The trapped paths, out of line but specialized for each width, so values pass in
    // registers: a loop of mapped accesses then keeps no spill slot for the path it never takes.
    @inlinable @inline(never)
    func trappedRead<V: MMIOValue>(at offset: Int) -> V { region.trappedRead(at: offset) }

    @inlinable @inline(never)
    func trappedWrite<V: MMIOValue>(_ value: V, at offset: Int) { region.trappedWrite(value, at: offset) }
}
