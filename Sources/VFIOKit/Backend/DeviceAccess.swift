import PCI
import SystemPackage

/// How the framework reaches one open device: regions, config space, interrupts and reset.
/// `VFIODeviceFile` (vfio-pci, any IOMMU mode) and `UIODeviceFiles` (uio_pci_generic)
/// implement it; ``PCIDevice`` is written only against this.
protocol DeviceAccess: AnyObject, Sendable {
    /// One past the highest region index the device has.
    var regionCount: Int { get }
    /// Region `index`, or nil when the device has none there (or it is empty).
    func region(_ index: Int) throws(VFIOError) -> RegionInfo?
    /// Reads `buffer.count` bytes at `offset` within the region; short reads are errors.
    func read(_ region: RegionInfo, at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws(VFIOError)
    /// Writes `buffer.count` bytes at `offset` within the region; short writes are errors.
    func write(_ region: RegionInfo, at offset: Int, from buffer: UnsafeRawBufferPointer) throws(VFIOError)
    /// Maps `area` of the region and returns its first byte.
    func map(_ region: RegionInfo, area: Range<Int>) throws(VFIOError) -> UnsafeMutableRawPointer
    /// The config-space region.
    var configRegion: RegionInfo { get }

    /// The kernel's description of an interrupt index.
    func interruptInfo(_ index: IRQIndex) throws(VFIOError) -> IRQInfo
    /// Connects vectors `start..<start+fds.count` to eventfds (-1 disconnects one).
    func setTriggers(_ index: IRQIndex, start: Int, eventfds: [Int32]) throws(VFIOError)
    /// Turns the whole index off.
    func disable(_ index: IRQIndex) throws(VFIOError)
    /// Unmasks vector 0 of a maskable index (INTx after it fired).
    func unmask(_ index: IRQIndex) throws(VFIOError)
    /// Masks vector 0 of a maskable index.
    func mask(_ index: IRQIndex) throws(VFIOError)
    /// Fires a vector from software, as the kernel's loopback trigger does.
    func trigger(_ index: IRQIndex, vector: Int) throws(VFIOError)
    /// The INTx source, when the backend has its own file for it (UIO's /dev/uioN). The same
    /// object each time, since it tracks what reads of that file returned.
    var nativeInterruptSource: InterruptSource? { get }

    /// Resets the device (function-level or what the kernel offers).
    func reset() throws(VFIOError)
    /// True when the kernel reports the device can be reset.
    var canReset: Bool { get }
    /// Releases every file and mapping; safe to call twice.
    func close()
}

/// A positioned transfer of a whole buffer within a region, as both backends make it: the
/// call is named `pread` or `pwrite` with the region and offset, and a short transfer is the
/// device misbehaving.
func transferAll(
    _ call: String, _ region: RegionInfo, at offset: Int, count: Int, device: PCIAddress,
    _ transfer: () throws(Errno) -> Int
) throws(VFIOError) {
    // Made only for an error: a trapped BAR's every access comes through here.
    func at() -> String { "region \(region.index) at 0x\(String(offset, radix: 16))" }
    let n = try attempt(SystemCall(call, device: device, detail: at()), transfer)
    guard n == count else {
        throw .deviceMisbehaved("short \(call == "pread" ? "read" : "write") of \(at()): \(n) of \(count) bytes")
    }
}
