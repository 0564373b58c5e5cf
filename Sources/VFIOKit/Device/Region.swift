import Logging
import Synchronization

/// One region of an open device (a BAR or config space), mapped where the kernel allows it.
///
/// Accesses use the mapping when one covers them and pread/pwrite on the device otherwise, so
/// a driver works unchanged on mappable and trapped regions.
///
/// Lifetime: a region keeps its ``PCIDevice`` open for as long as the region, or any ``MMIO``
/// view made from it, lives. When the device is closed explicitly or removed, the region is
/// retired: its mappings are replaced in place by anonymous memory that reads all ones (as a
/// PCI read of a vanished device does), and trapped accesses fail with
/// ``VFIOError/deviceClosed(_:operation:)``, which ``MMIO`` turns into all ones as well. A write
/// through a stale view is dropped: it reaches neither the device nor any memory in use, and
/// later reads still see all ones. The address range stays reserved until the region itself goes.
///
/// Trapped accesses through ``MMIO`` cannot throw: a failed one is counted in
/// ``accessErrors``, and the first since the last ``checkAccesses()`` is kept, so an operation
/// that must know its register writes reached the device (a commit that waits for an
/// acknowledgement) checks after them. Mapped accesses cannot fail and cost nothing extra.
public final class Region: Sendable {
    public let info: RegionInfo
    /// The device, kept open by the region.
    public let device: PCIDevice
    let access: any DeviceAccess
    private let system: any SystemCalls
    /// Mapped areas as (area, first byte); the region owns them and unmaps them in `deinit`.
    private let mapped: [(area: Range<Int>, address: UInt)]
    private let errors = Atomic<Int>(0)
    /// The first trapped access that failed since the last ``checkAccesses()``.
    private let firstFailure = Mutex<VFIOError?>(nil)
    private let retired = Atomic<Bool>(false)
    private let logger: Logger

    init(info: RegionInfo, device: PCIDevice, access: any DeviceAccess, system: any SystemCalls, logger: Logger) {
        self.info = info
        self.device = device
        self.access = access
        self.system = system
        self.logger = logger
        // An area the kernel will not map after all (UIO on a BAR it cannot map) is reached
        // through pread/pwrite instead, like any unmappable part.
        var mapped: [(Range<Int>, UInt)] = []
        for area in info.mappableAreas {
            do {
                mapped.append((area, UInt(bitPattern: try access.map(info, area: area))))
            } catch {
                logger.notice(
                    "mmap refused; using pread/pwrite for this area",
                    metadata: ["device": "\(device.address)", "region": "\(info.index)", "area": "\(area)", "error": "\(error)"])
            }
        }
        self.mapped = mapped
    }

    deinit {
        for m in mapped {
            guard let p = UnsafeMutableRawPointer(bitPattern: m.address) else { continue }
            if retired.load(ordering: .acquiring) { system.forgetRetiredMapping(p) }
            try? system.munmap(p, length: m.area.count)
        }
    }

    public var size: Int { info.size }

    /// How many trapped accesses failed since the region was opened.
    public var accessErrors: Int { errors.load(ordering: .relaxed) }

    /// Throws the first trapped access through ``MMIO`` that failed since the last check (its
    /// error names the pread or pwrite, the device, the offset and the errno) and forgets it.
    /// Failures that come while no one checks are kept until someone does.
    public func checkAccesses() throws(VFIOError) {
        guard errors.load(ordering: .acquiring) != 0, let failure = firstFailure.withLock({ $0.take() }) else { return }
        throw failure
    }

    /// A typed register view, which keeps the region (and so the device) alive. Throws
    /// ``VFIOError/regionTooSmall(_:index:size:needed:)`` when the region is shorter than
    /// `Layout.extent`.
    public func mmio<Layout: RegisterLayout>(_ layout: Layout.Type) throws(VFIOError) -> MMIO<Layout> {
        guard Layout.extent <= info.size else { throw .regionTooSmall(device.address, index: info.index, size: info.size, needed: Layout.extent) }
        return MMIO(base: pointer(covering: 0..<Layout.extent), region: self)
    }

    /// The mapped address of `range`'s first byte, when one mapping covers all of it. Valid
    /// while the region lives; after the device closes it reads all ones.
    public func pointer(covering range: Range<Int>) -> UnsafeMutableRawPointer? {
        for m in mapped where m.area.lowerBound <= range.lowerBound && range.upperBound <= m.area.upperBound {
            return UnsafeMutableRawPointer(bitPattern: m.address + UInt(range.lowerBound - m.area.lowerBound))
        }
        return nil
    }

    /// Reads a value at `offset`, checked against the region's size.
    public func read<V: MMIOValue>(_ type: V.Type = V.self, at offset: Int) throws(VFIOError) -> V {
        try check(offset, MemoryLayout<V>.size, "read")
        if let p = pointer(covering: offset..<offset + MemoryLayout<V>.size) { return V.volatileLoad(p) }
        var value = V.zero
        try withUnsafeMutableBytes(of: &value) { (b) throws(VFIOError) in try access.read(info, at: offset, into: b) }
        return V(littleEndian: value)
    }

    /// Writes a value at `offset`, checked against the region's size.
    public func write<V: MMIOValue>(_ value: V, at offset: Int) throws(VFIOError) {
        try check(offset, MemoryLayout<V>.size, "write")
        if let p = pointer(covering: offset..<offset + MemoryLayout<V>.size) { return V.volatileStore(p, value) }
        var le = value.littleEndian
        try withUnsafeBytes(of: &le) { (b) throws(VFIOError) in try access.write(info, at: offset, from: b) }
    }

    /// Reads `buffer.count` bytes at `offset` (any alignment) through pread.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(VFIOError) {
        try check(offset, buffer.count, "read")
        try access.read(info, at: offset, into: buffer)
    }

    private func check(_ offset: Int, _ width: Int, _ what: String) throws(VFIOError) {
        guard !retired.load(ordering: .acquiring) else {
            throw .deviceClosed(device.address, operation: "\(what) of region \(info.index) at 0x\(String(offset, radix: 16))")
        }
        guard offset >= 0, offset + width <= info.size else {
            throw .regionTooSmall(device.address, index: info.index, size: info.size, needed: offset + width)
        }
    }

    /// The device closed or went away: mapped areas now read all ones and trapped accesses fail.
    func retire() {
        guard !retired.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for m in mapped {
            guard let p = UnsafeMutableRawPointer(bitPattern: m.address) else { continue }
            let metadata: Logger.Metadata = ["device": "\(device.address)", "region": "\(info.index)", "area": "\(m.area)"]
            do {
                if try !system.retireMapping(p, length: m.area.count) {
                    logger.notice("writes through stale views of this area land in private memory, not dropped", metadata: metadata)
                }
            } catch {
                logger.error("cannot retire the mapping: stale views still reach the device", metadata: metadata.merging(["error": "\(error)"]) { $1 })
            }
        }
    }

    /// Reads at `offset` without throwing: a failure reads all ones and is kept for
    /// ``checkAccesses()``. For a store or driver that addresses registers by computed offset
    /// (a table of slots) and checks its accesses once, as ``MMIO`` does for declared registers.
    public func trappedRead<V: MMIOValue>(at offset: Int) -> V {
        do { return try read(V.self, at: offset) } catch {
            record(error)
            return V.max
        }
    }

    /// Writes at `offset` without throwing: a failure is kept for ``checkAccesses()``.
    public func trappedWrite<V: MMIOValue>(_ value: V, at offset: Int) {
        do { try write(value, at: offset) } catch { record(error) }
    }

    private func record(_ error: VFIOError) {
        firstFailure.withLock { if $0 == nil { $0 = error } }
        errors.add(1, ordering: .releasing)
    }
}
