import PCI

/// A PCI function simulated in software and plugged into a ``MockKernel``.
///
/// The mock plays the hardware around the device: it builds the physical config space from
/// ``description``, owns memory-backed BARs and the MSI-X table, gates DMA and MSI on the
/// command register's bus-master bit and routes interrupts through vfio-pci or uio. The
/// device supplies only its behaviour:
/// - ``readRegister(bar:offset:width:)`` and ``writeRegister(bar:offset:width:value:)`` serve
///   its trap-and-emulate BARs, synchronously on the caller's thread;
/// - ``configWritten(offset:width:value:)`` tells it a config write reached the hardware;
/// - ``reset()`` is a function-level reset.
///
/// None of these is called while the mock holds its lock, so each may call back into the
/// ``DeviceBus`` it got from ``attach(to:)``. They can be called from any thread, so a device
/// protects its own state.
public protocol SimulatedDevice: AnyObject, Sendable {
    /// What the device is: IDs, BARs and interrupt capabilities. Read once, at plug time.
    var description: DeviceDescription { get }
    /// Hands the device its bus; called once, when it is plugged in, before anything else.
    func attach(to bus: DeviceBus)
    /// A read of `width` (1, 2, 4 or 8) bytes at `offset` in a trapped BAR.
    func readRegister(bar: Int, offset: Int, width: Int) -> UInt64
    /// A write of `width` (1, 2, 4 or 8) bytes at `offset` in a trapped BAR.
    func writeRegister(bar: Int, offset: Int, width: Int, value: UInt64)
    /// A write reached the physical config space (after vfio-pci's filtering).
    func configWritten(offset: Int, width: Int, value: UInt32)
    /// Function-level reset: the device returns to its power-on state. The mock has already
    /// reset the config space, the MSI-X table and the memory BARs' contents are the device's.
    func reset()
}

extension SimulatedDevice {
    /// No trapped BAR: every read returns all ones of `width` bytes, as an unclaimed read does.
    public func readRegister(bar: Int, offset: Int, width: Int) -> UInt64 { ~0 >> (64 - UInt64(width) * 8) }
    /// No trapped BAR: writes are ignored.
    public func writeRegister(bar: Int, offset: Int, width: Int, value: UInt64) {}
    /// Config writes mean nothing to the device: ignored.
    public func configWritten(offset: Int, width: Int, value: UInt32) {}
}
