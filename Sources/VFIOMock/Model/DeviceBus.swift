import PCI

/// A simulated device's view of the machine: DMA through the IOMMU, interrupts, its own
/// memory BARs and command register. Safe to call from any thread, including from inside a
/// register access; never blocks on the framework.
public final class DeviceBus: @unchecked Sendable {
    /// The address the function is plugged at.
    public let address: PCIAddress
    private weak var kernel: MockKernel?

    init(address: PCIAddress, kernel: MockKernel) {
        self.address = address
        self.kernel = kernel
    }

    /// Reads device-visible memory at `iova` into `buffer`. Returns false, recording a
    /// ``DMAFault`` and leaving `buffer` untouched, if any byte is not reachable for reading.
    @discardableResult
    public func dmaRead(iova: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        kernel?.deviceDMA(address, iova: iova, buffer: buffer, isWrite: false) ?? false
    }

    /// Writes `bytes` to device-visible memory at `iova`. Returns false, recording a
    /// ``DMAFault`` and writing nothing, if any byte is not reachable for writing.
    @discardableResult
    public func dmaWrite(iova: UInt64, from bytes: UnsafeRawBufferPointer) -> Bool {
        kernel?.deviceDMA(address, iova: iova, buffer: UnsafeMutableRawBufferPointer(mutating: bytes), isWrite: true) ?? false
    }

    /// Writes an interrupt message (or any 32-bit value) to `address`, as a device with its
    /// own message store does: see ``MockKernel/interruptMessage(of:msix:vector:)``.
    @discardableResult
    public func writeMessage(address: UInt64, data: UInt32) -> Bool {
        kernel?.deliverMessage(from: self.address, address: address, data: data) ?? false
    }

    /// Drives the INTx line (level-triggered).
    public func setINTx(asserted: Bool) { kernel?.withFunction(address) { $0.setINTx(asserted) } }

    /// Sends MSI vector `vector`; delivered only if bus mastering and MSI are enabled and the
    /// vector is enabled and unmasked (else dropped, or held pending while masked).
    public func signalMSI(vector: Int) { kernel?.withFunction(address) { $0.signalMSI(vector) } }

    /// Sends MSI-X vector `vector`; held in the PBA while the vector or the function is
    /// masked in the table, delivered once unmasked.
    public func signalMSIX(vector: Int) { kernel?.withFunction(address) { $0.signalMSIX(vector) } }

    /// The physical command register.
    public var command: UInt16 { kernel?.withFunction(address) { $0.command } ?? 0 }
    /// The physical command register's bus-master bit: without it the bus refuses the device's DMA.
    public var busMasterEnabled: Bool { command & PCIConfig.commandBusMaster != 0 }
    /// The function's MSI capability is enabled (physical config space).
    public var msiEnabled: Bool { kernel?.withFunction(address) { $0.msiEnabled } ?? false }
    /// The function's MSI-X capability is enabled (physical config space).
    public var msixEnabled: Bool { kernel?.withFunction(address) { $0.msixEnabled } ?? false }

    /// The bytes of a shared-memory BAR, as the device sees them; nil for a trapped BAR.
    public func barMemory(_ index: Int) -> BARMemory? {
        kernel?.withFunction(address) { f in f.barMemory[index].map(BARMemory.init) } ?? nil
    }
}

/// A shared-memory BAR's bytes, which stay mapped while this value lives: a device model's
/// thread may outlive the function it was plugged in as.
public struct BARMemory: @unchecked Sendable {
    private let owner: SharedMemory
    /// The BAR's bytes, valid while this value lives.
    public var bytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: owner.bytes, count: owner.size) }

    init(_ owner: SharedMemory) { self.owner = owner }
}
