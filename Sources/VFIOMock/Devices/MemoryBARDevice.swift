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
    public struct Options: Sendable {
        public var vendorID: UInt16 = 0x1b36
        public var deviceID: UInt16 = 0x0005
        public var classCode: UInt32 = 0x00ff00
        /// BAR0's size: a power of two, at least 16 KiB with MSI-X in BAR0.
        public var barSize = 64 * 1024
        public var is64Bit = false
        public var interruptPin: UInt8 = 1
        public var msiVectors: Int? = nil
        public var msixVectors: Int? = nil
        public var msixTableOffset = 0x2000
        public var msixInTrappedBAR = false
        public var isPCIExpress = true
        /// FLR: in the PCIe capability, or an Advanced Features capability without PCIe.
        public var supportsReset = true
        /// A PCI Power Management capability (PM reset when No_Soft_Reset is clear).
        public var powerManagement: PowerManagementDescription? = nil

        public init() {}
    }

    public let options: Options
    /// How many times the function was reset.
    public var resetCount: Int { resets.withLock { $0 } }
    private let resets = Mutex(0)
    private let busBox = Mutex<DeviceBus?>(nil)

    public init(options: Options = Options()) { self.options = options }

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

    public func attach(to bus: DeviceBus) { busBox.withLock { $0 = bus } }

    /// The bus the device was plugged into.
    public var bus: DeviceBus? { busBox.withLock { $0 } }

    /// Reset leaves BAR0's memory as it is: it stands for RAM, not registers.
    public func reset() { resets.withLock { $0 += 1 } }
}
