import CVFIO
import PCI
import Synchronization

/// A PCI function opened for a userspace driver.
///
/// Open it with ``open(_:backend:system:)``; everything it hands out (regions, DMA buffers,
/// interrupt sources) is valid until ``close()``, which disables interrupts, unmaps all DMA,
/// unmaps regions and closes every file it opened, leaving the device as the kernel had it.
public final class PCIDevice: Sendable {
    public let address: PCIAddress
    /// The backend in use (never `.auto`).
    public let backend: Backend
    /// The device's DMA: buffers and IOVAs.
    public let dma: DMASpace
    /// The device's interrupts.
    public let interrupts: Interrupts
    let access: any DeviceAccess
    let system: any SystemCalls
    private let regions = Mutex<[Int: Region]>([:])
    private let closed = Atomic<Bool>(false)

    /// Opens `address` on `backend` (`.auto` chooses at run time; see ``Backend``), through
    /// `system`: the real kernel by default, or a model of it.
    public static func open(
        _ address: PCIAddress, backend: Backend = .auto, system: any SystemCalls = HostSystemCalls.shared
    ) throws(VFIOError) -> PCIDevice {
        let opened = try DeviceOpening.open(address, backend: backend, system: system)
        return PCIDevice(address: address, opened: opened, system: system)
    }

    private init(address: PCIAddress, opened: OpenedDevice, system: any SystemCalls) {
        self.address = address
        self.backend = opened.backend
        self.access = opened.access
        self.dma = DMASpace(mapper: opened.mapper, system: system)
        self.interrupts = Interrupts(access: opened.access, system: system)
        self.system = system
    }

    deinit { close() }

    /// One past the highest region index (9 for vfio-pci: BARs, ROM, config, VGA; more with
    /// device-specific regions).
    public var regionCount: Int { access.regionCount }

    /// The kernel's description of region `index` (BAR 0–5, ROM 6, config 7).
    public func regionInfo(_ index: Int) throws(VFIOError) -> RegionInfo {
        guard let info = try access.region(index) else { throw .noSuchRegion(index: index, address) }
        return info
    }

    /// Region `index`, mapped where the kernel allows. The same object is returned each time.
    public func region(_ index: Int) throws(VFIOError) -> Region {
        if let r = regions.withLock({ $0[index] }) { return r }
        let region = Region(info: try regionInfo(index), access: access)
        return regions.withLock { r in
            if let existing = r[index] { return existing }
            r[index] = region
            return region
        }
    }

    /// BAR `index` (0–5).
    public func bar(_ index: Int) throws(VFIOError) -> Region {
        guard (0...5).contains(index) else { throw .noSuchRegion(index: index, address) }
        return try region(index)
    }

    /// Reads a little-endian config-space value.
    public func readConfig<V: MMIOValue>(_ type: V.Type = V.self, at offset: Int) throws(VFIOError) -> V {
        try configRegion.read(type, at: offset)
    }

    /// Writes a little-endian config-space value.
    public func writeConfig<V: MMIOValue>(_ value: V, at offset: Int) throws(VFIOError) {
        try configRegion.write(value, at: offset)
    }

    /// The whole config space the backend exposes (256 or 4096 bytes), for the PCI model's
    /// capability walk.
    public func readConfigSpace() throws(VFIOError) -> [UInt8] {
        let region = try configRegion
        var bytes = [UInt8](repeating: 0, count: region.size)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: region.size, alignment: 8)
        defer { buffer.deallocate() }
        try region.read(into: buffer, at: 0)
        bytes.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(buffer)) }
        return bytes
    }

    /// Sets or clears Bus Master Enable in the command register. vfio-pci leaves it as the
    /// device had it, so a driver that does DMA turns it on.
    public func setBusMaster(_ enabled: Bool) throws(VFIOError) {
        let command: UInt16 = try readConfig(at: 0x04)
        let updated = enabled ? command | 0x4 : command & ~0x4
        if updated != command { try writeConfig(updated, at: 0x04) }
    }

    /// Starts reading the IOMMU's fault reports for this device; see ``IOMMUFaultLog``.
    public func openFaultLog() throws(VFIOError) -> IOMMUFaultLog {
        try IOMMUFaultLog(address: address, system: system)
    }

    /// True when the kernel can reset the device.
    public var canReset: Bool { access.canReset }

    /// Resets the device. Interrupt wiring is kept as the kernel keeps it; device state is not.
    public func reset() throws(VFIOError) { try access.reset() }

    /// Releases everything; safe to call more than once.
    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        interrupts.disableAll()
        access.close()
        dma.close()
        regions.withLock { $0.removeAll() }
    }

    private var configRegion: Region {
        get throws(VFIOError) {
            if let r = regions.withLock({ $0[access.configRegion.index] }) { return r }
            return try region(access.configRegion.index)
        }
    }
}
