import CVFIO
import Logging
import Synchronization
import SystemPackage

/// One region of an open device (a BAR or config space), mapped where the kernel allows it.
///
/// Accesses use the mapping when one covers them and pread/pwrite on the device otherwise, so
/// a driver works unchanged on mappable and trapped regions.
///
/// Lifetime: a region keeps its ``PCIDevice`` open for as long as the region, or any ``MMIO``
/// view made from it, lives. When the device is closed explicitly or removed, the region is
/// retired (DPDK's way): each mapping is replaced in place by private anonymous memory filled
/// with all ones, read-write. A read through a stale view returns all ones (as a PCI read of a
/// vanished device does) until something writes there; a write lands in that private memory
/// and reaches no device. Trapped accesses fail with ``VFIOError/deviceClosed(_:operation:)``,
/// which ``MMIO`` turns into all ones as well. The address range stays reserved until the
/// region itself goes.
///
/// When the kernel disables the memory behind a mapping while the device is open (a reset in
/// progress, a surprise removal), an access raises SIGBUS; the mapping guard (CVFIO's
/// `cvfio_mapping_guard.h`) replaces that mapping with all-ones memory the same way, and the
/// process lives on. ``liveness`` tells a driver that must know which of these happened.
///
/// Trapped accesses through ``MMIO`` cannot throw: a failed one is counted in
/// ``accessErrors``, and the first since the last ``checkAccesses()`` is kept, so an operation
/// that must know its register writes reached the device (a commit that waits for an
/// acknowledgement) checks after them. Mapped accesses cannot fail and cost nothing extra.
public final class Region: Sendable {
    /// The region as the kernel described it when it was opened.
    public let info: RegionInfo
    /// The device, kept open by the region.
    public let device: PCIDevice
    let access: any DeviceAccess
    private let system: any SystemCalls
    /// Mapped areas as (area, first byte, SIGBUS guard or nil); the region owns them and
    /// unmaps them in `deinit`.
    private let mapped: [(area: Range<Int>, address: UInt, guard: Int32?)]
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
        var mapped: [(Range<Int>, UInt, Int32?)] = []
        for area in info.mappableAreas {
            let address: UnsafeMutableRawPointer
            do {
                address = try access.map(info, area: area)
            } catch {
                logger.notice(
                    "mmap refused; using pread/pwrite for this area",
                    metadata: ["device": "\(device.address)", "region": "\(info.index)", "area": "\(area)", "error": "\(error)"])
                continue
            }
            let guardNumber = cvfio_guard_mapping(address, area.count)
            if guardNumber < 0 {
                logger.warning(
                    "this area is unguarded: a SIGBUS from it (the kernel disabling the memory) ends the process",
                    metadata: [
                        "device": "\(device.address)", "region": "\(info.index)", "area": "\(area)",
                        "error": "\(Errno(rawValue: -guardNumber))",
                    ])
            }
            mapped.append((area, UInt(bitPattern: address), guardNumber < 0 ? nil : guardNumber))
        }
        self.mapped = mapped
    }

    deinit {
        for m in mapped {
            guard let p = UnsafeMutableRawPointer(bitPattern: m.address) else { continue }
            if let g = m.guard { cvfio_unguard_mapping(g) }
            // Cannot fail here: the range is one this region mapped, whole and page aligned.
            try? system.munmap(p, length: m.area.count)
        }
    }

    /// Whether accesses through the region still reach the device.
    public enum Liveness: Sendable, Equatable {
        /// Accesses reach the device.
        case live
        /// The device was closed or removed: mapped accesses reach private all-ones memory and
        /// trapped ones fail.
        case closed
        /// The kernel disabled the memory behind a mapping (a reset, a removal): that mapping
        /// now reaches private all-ones memory, for good, though the device is still open.
        case revoked
    }

    /// Whether accesses through the region still reach the device. A driver that must know its
    /// reads are real (all ones can be a register's value) checks it after reading.
    public var liveness: Liveness {
        if retired.load(ordering: .acquiring) { return .closed }
        for m in mapped { if let g = m.guard, cvfio_guard_tripped(g) != 0 { return .revoked } }
        return .live
    }

    /// The region's length in bytes, ``RegionInfo/size``.
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
        guard Layout.extent <= info.size else {
            throw .regionTooSmall(device.address, index: info.index, size: info.size, needed: Layout.extent)
        }
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
            do {
                try system.retireMapping(p, length: m.area.count)
            } catch {
                logger.error(
                    "cannot retire the mapping: stale views still reach the device",
                    metadata: ["device": "\(device.address)", "region": "\(info.index)", "area": "\(m.area)", "error": "\(error)"])
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
