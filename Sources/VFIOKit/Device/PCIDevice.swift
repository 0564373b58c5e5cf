import CVFIO
import Logging
import PCI
import Synchronization

/// A PCI function opened for a userspace driver.
///
/// Open it into a shared ``IOMMUContext`` with ``IOMMUContext/open(_:)``, or with
/// ``open(_:backend:system:logger:)``, which makes a private context that closes with the
/// device. Regions, register views and interrupt sources keep the device open for as long as
/// they live. ``close()`` disables interrupts, retires every region (stale views read all
/// ones), closes the device's files and releases its group, leaving the device as the kernel
/// had it; DMA buffers belong to the context.
public final class PCIDevice: Sendable {
    /// The function's address (domain:bus:device.function).
    public let address: PCIAddress
    /// The backend in use (never `.auto`).
    public let backend: Backend
    /// The IO address space the device's DMA goes through.
    public let context: IOMMUContext
    /// The device's interrupts.
    public let interrupts: Interrupts
    let access: any DeviceAccess
    private let logger: Logger
    private let ownsContext: Bool
    private struct WeakRegion { weak var region: Region? }
    private let regions = Mutex<[Int: WeakRegion]>([:])
    private let closed = Atomic<Bool>(false)

    /// Opens `address` on `backend` (`.auto` chooses at run time; see ``Backend``) in a private
    /// IOMMU context, through `system`: the real kernel by default, or a model of it.
    public static func open(
        _ address: PCIAddress, backend: Backend = .auto, system: any SystemCalls = HostSystemCalls.shared,
        logger: Logger = .vfiokitSilent
    ) throws(VFIOError) -> PCIDevice {
        let context = IOMMUContext(backend: backend, system: system, logger: logger)
        do {
            return try open(address, in: context, ownsContext: true)
        } catch {
            context.close()
            throw error
        }
    }

    static func open(_ address: PCIAddress, in context: IOMMUContext, ownsContext: Bool = false) throws(VFIOError) -> PCIDevice {
        let attachment = try context.attach(address)
        let device = PCIDevice(address: address, context: context, attachment: attachment, ownsContext: ownsContext)
        context.adopt(device)
        return device
    }

    private init(address: PCIAddress, context: IOMMUContext, attachment: IOMMUContext.Attachment, ownsContext: Bool) {
        self.address = address
        self.backend = attachment.backend
        self.access = attachment.access
        self.context = context
        self.ownsContext = ownsContext
        self.logger = context.logger
        self.interrupts = Interrupts(address: address, access: attachment.access, system: context.system, logger: context.logger)
    }

    deinit { close() }

    /// The context's DMA: buffers every device of the context can reach.
    public var dma: DMASpace { context.dma }

    /// True once ``close()`` ran (or the context closed).
    public var isClosed: Bool { closed.load(ordering: .acquiring) }

    /// One past the highest region index (9 for vfio-pci: BARs, ROM, config, VGA; more with
    /// device-specific regions).
    public var regionCount: Int { access.regionCount }

    /// The kernel's description of region `index` (BAR 0–5, ROM 6, config 7).
    public func regionInfo(_ index: Int) throws(VFIOError) -> RegionInfo {
        guard let info = try access.region(index) else { throw .noSuchRegion(index: index, address) }
        return info
    }

    /// Region `index`, mapped where the kernel allows. The same object is returned while any
    /// user holds it; it keeps the device open.
    public func region(_ index: Int) throws(VFIOError) -> Region {
        guard !isClosed else { throw .deviceClosed(address, operation: "opening region \(index)") }
        if let r = regions.withLock({ $0[index]?.region }) { return r }
        let region = Region(info: try regionInfo(index), device: self, access: access, system: context.system, logger: logger)
        return regions.withLock { r in
            if let existing = r[index]?.region { return existing }
            r[index] = WeakRegion(region: region)
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
        try checkConfig(offset, MemoryLayout<V>.size)
        var value = V.zero
        try withUnsafeMutableBytes(of: &value) { (b) throws(VFIOError) in try access.read(access.configRegion, at: offset, into: b) }
        return V(littleEndian: value)
    }

    /// Writes a little-endian config-space value.
    public func writeConfig<V: MMIOValue>(_ value: V, at offset: Int) throws(VFIOError) {
        try checkConfig(offset, MemoryLayout<V>.size)
        var le = value.littleEndian
        try withUnsafeBytes(of: &le) { (b) throws(VFIOError) in try access.write(access.configRegion, at: offset, from: b) }
    }

    /// The whole config space the backend exposes (256 or 4096 bytes), for the PCI model's
    /// capability walk.
    public func readConfigSpace() throws(VFIOError) -> [UInt8] {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: access.configRegion.size, alignment: 8)
        defer { buffer.deallocate() }
        try access.read(access.configRegion, at: 0, into: buffer)
        return Array(buffer)
    }

    private func checkConfig(_ offset: Int, _ width: Int) throws(VFIOError) {
        guard offset >= 0, offset + width <= access.configRegion.size else {
            throw .regionTooSmall(address, index: access.configRegion.index, size: access.configRegion.size, needed: offset + width)
        }
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
        try IOMMUFaultLog(address: address, system: context.system, logger: logger)
    }

    /// True when the kernel can reset the device.
    public var canReset: Bool { access.canReset }

    /// Resets the device. Interrupt wiring is kept as the kernel keeps it; device state is not.
    public func reset() throws(VFIOError) { try access.reset() }

    /// Disables interrupts, retires every region, closes the device's files and releases its
    /// group; a private context closes too. Safe to call more than once, from any thread.
    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        interrupts.disableAll()
        for region in regions.withLock({ r in
            defer { r.removeAll() }; return r.values.compactMap(\.region)
        }) { region.retire() }
        access.close()
        context.detach(address)
        if ownsContext { context.close() }
    }
}
