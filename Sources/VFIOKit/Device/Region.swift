import Atomics

/// One region of an open device (a BAR or config space), mapped when the kernel allows it.
///
/// Accesses use the mapping when one covers them and pread/pwrite on the device otherwise, so
/// a driver works unchanged on mappable and trapped regions. A region lives as long as the
/// ``PCIDevice`` it came from; using it after the device closes is an error the kernel reports.
public final class Region: Sendable {
    public let info: RegionInfo
    let access: any DeviceAccess
    /// Mapped areas as (area, first byte).
    private let mapped: [(area: Range<Int>, address: UInt)]
    private let errors = ManagedAtomic<Int>(0)

    init(info: RegionInfo, access: any DeviceAccess) {
        self.info = info
        self.access = access
        // An area the kernel will not map after all (UIO on a BAR it cannot map) is reached
        // through pread/pwrite instead, like any unmappable part.
        var mapped: [(Range<Int>, UInt)] = []
        for area in info.mappableAreas {
            if let p = try? access.map(info, area: area) { mapped.append((area, UInt(bitPattern: p))) }
        }
        self.mapped = mapped
    }

    public var size: Int { info.size }

    /// How many trapped accesses failed since the region was opened.
    public var accessErrors: Int { errors.load(ordering: .relaxed) }

    /// A typed register view. Throws ``VFIOError/regionTooSmall(index:size:needed:)`` when the
    /// region is shorter than `Layout.extent`.
    public func mmio<Layout: RegisterLayout>(_ layout: Layout.Type) throws(VFIOError) -> MMIO<Layout> {
        guard Layout.extent <= info.size else { throw .regionTooSmall(index: info.index, size: info.size, needed: Layout.extent) }
        return MMIO(base: pointer(covering: 0..<Layout.extent), region: self)
    }

    /// The mapped address of `range`'s first byte, when one mapping covers all of it.
    public func pointer(covering range: Range<Int>) -> UnsafeMutableRawPointer? {
        for m in mapped where m.area.lowerBound <= range.lowerBound && range.upperBound <= m.area.upperBound {
            return UnsafeMutableRawPointer(bitPattern: m.address + UInt(range.lowerBound - m.area.lowerBound))
        }
        return nil
    }

    /// Reads a value at `offset`, checked against the region's size.
    public func read<V: MMIOValue>(_ type: V.Type = V.self, at offset: Int) throws(VFIOError) -> V {
        try check(offset, MemoryLayout<V>.size)
        if let p = pointer(covering: offset..<offset + MemoryLayout<V>.size) { return V.volatileLoad(p) }
        var value = V.zero
        try withUnsafeMutableBytes(of: &value) { (b) throws(VFIOError) in try access.read(info, at: offset, into: b) }
        return V(littleEndian: value)
    }

    /// Writes a value at `offset`, checked against the region's size.
    public func write<V: MMIOValue>(_ value: V, at offset: Int) throws(VFIOError) {
        try check(offset, MemoryLayout<V>.size)
        if let p = pointer(covering: offset..<offset + MemoryLayout<V>.size) { return V.volatileStore(p, value) }
        var le = value.littleEndian
        try withUnsafeBytes(of: &le) { (b) throws(VFIOError) in try access.write(info, at: offset, from: b) }
    }

    /// Reads `buffer.count` bytes at `offset` (any alignment) through pread.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(VFIOError) {
        try check(offset, buffer.count)
        try access.read(info, at: offset, into: buffer)
    }

    private func check(_ offset: Int, _ width: Int) throws(VFIOError) {
        guard offset >= 0, offset + width <= info.size else {
            throw .regionTooSmall(index: info.index, size: info.size, needed: offset + width)
        }
    }

    @usableFromInline
    func trappedRead<V: MMIOValue>(at offset: Int) -> V {
        do { return try read(V.self, at: offset) } catch {
            errors.wrappingIncrement(ordering: .relaxed)
            return V.max
        }
    }

    @usableFromInline
    func trappedWrite<V: MMIOValue>(_ value: V, at offset: Int) {
        do { try write(value, at: offset) } catch { errors.wrappingIncrement(ordering: .relaxed) }
    }
}
