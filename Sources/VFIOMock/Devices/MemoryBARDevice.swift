import Synchronization

/// A plain device for fast-path and interrupt tests: BAR0 is shared memory the framework
/// can mmap and the test can read through ``DeviceBus/barMemory(_:)``; interrupts are raised
/// by the test through the ``DeviceBus`` that `plug` returns.
///
/// With MSI-X, the table sits in BAR0 at ``Options/msixTableOffset`` (like an NVMe
/// controller's, inside its register BAR) and the PBA one page above it, or, with
/// ``Options/msixInTrappedBAR``, at the start of a 16 KiB trapped BAR4 that software cannot
/// map, with the PBA at 0x2000.
public final class MemoryBARDevice: SimulatedDevice {
    /// The device's shape, fixed when it is made; the defaults are a PCIe function with one 64 KiB
    /// 32-bit BAR, INTA, FLR, and no MSI or MSI-X.
    public struct Options: Sendable {
        /// The vendor ID; 0x1b36 (QEMU's) by default.
        public var vendorID: UInt16 = 0x1b36
        /// The device ID; 0x0005 (QEMU's pci-testdev) by default.
        public var deviceID: UInt16 = 0x0005
        /// The 24-bit class code; 0x00ff00 (unclassified) by default.
        public var classCode: UInt32 = 0x00ff00
        /// BAR0's size: a power of two, at least 16 KiB with MSI-X in BAR0.
        public var barSize = 64 * 1024
        /// Makes BAR0 a 64-bit BAR.
        public var is64Bit = false
        /// The interrupt pin, 1 (INTA) to 4, or 0 for no INTx.
        public var interruptPin: UInt8 = 1
        /// An MSI capability with this many vectors (1, 2, 4 … 32) and per-vector masking; nil for none.
        public var msiVectors: Int? = nil
        /// An MSI-X capability with this many vectors (1 to 2048); nil for none.
        public var msixVectors: Int? = nil
        /// Where in BAR0 the MSI-X table starts (8-byte aligned); ignored with ``msixInTrappedBAR``.
        public var msixTableOffset = 0x2000
        /// Puts the MSI-X table and PBA in a trapped BAR4 instead of BAR0.
        public var msixInTrappedBAR = false
        /// Adds a PCI Express capability (and with it the extended config space).
        public var isPCIExpress = true
        /// FLR: in the PCIe capability, or an Advanced Features capability without PCIe.
        public var supportsReset = true
        /// A PCI Power Management capability (PM reset when No_Soft_Reset is clear).
        public var powerManagement: PowerManagementDescription? = nil

        /// The defaults listed on ``Options``.
        public init() {}
    }

    /// The shape the device was made with.
    public let options: Options
    /// How many times the function was reset.
    public var resetCount: Int { resets.withLock { $0 } }
    private let resets = Mutex(0)
    private let busBox = Mutex<DeviceBus?>(nil)

    /// A device of the given shape.
    public init(options: Options = Options()) { self.options = options }

    /// BAR0 as shared memory, plus BAR4 (16 KiB, trapped) when the MSI-X table is there, with the
    /// capabilities ``options`` asks for.
    public var description: DeviceDescription {
        var bars = [BARDescription(index: 0, size: options.barSize, backing: .sharedMemory, is64Bit: options.is64Bit)]
        var msix: MSIXDescription? = nil
        if let n = options.msixVectors {
            if options.msixInTrappedBAR {
                bars.append(BARDescription(index: 4, size: 16 * 1024, backing: .trapped))
                msix = MSIXDescription(tableSize: n, tableBAR: 4, tableOffset: 0, pbaBAR: 4, pbaOffset: 0x2000)
            } else {
                let pba = (options.msixTableOffset + 16 * n + 4095) & ~4095
                msix = MSIXDescription(tableSize: n, tableBAR: 0, tableOffset: options.msixTableOffset, pbaBAR: 0, pbaOffset: pba)
            }
        }
        var d = DeviceDescription(
            vendorID: options.vendorID, deviceID: options.deviceID, classCode: options.classCode, bars: bars,
            interruptPin: options.interruptPin, msi: options.msiVectors.map { MSIDescription(vectors: $0, perVectorMasking: true) },
            msix: msix, isPCIExpress: options.isPCIExpress, supportsReset: options.supportsReset)
        d.powerManagement = options.powerManagement
        return d
    }

    /// Keeps `bus` for the test to raise interrupts through (``bus``).
    public func attach(to bus: DeviceBus) { busBox.withLock { $0 = bus } }

    /// The bus the device was plugged into.
    public var bus: DeviceBus? { busBox.withLock { $0 } }

    /// Reset leaves BAR0's memory as it is: it stands for RAM, not registers.
    public func reset() { resets.withLock { $0 += 1 } }
}
