/// The hardware facts of a simulated PCI function, from which the mock builds its config
/// space, its BARs and its interrupt capabilities.
public struct DeviceDescription: Sendable {
    public var vendorID: UInt16
    public var deviceID: UInt16
    /// 24-bit class code: base class, subclass, programming interface.
    public var classCode: UInt32
    public var revision: UInt8
    public var subsystemVendorID: UInt16
    public var subsystemID: UInt16
    public var bars: [BARDescription]
    /// Interrupt pin 1 (INTA) to 4, or 0 when the device has no INTx.
    public var interruptPin: UInt8
    /// Multiple Message Capable as a vector count (1, 2, 4 … 32); nil for no MSI capability.
    public var msi: MSIDescription?
    public var msix: MSIXDescription?
    /// Adds a PCI Express capability; vfio-pci offers the ERR interrupt only for PCIe devices.
    public var isPCIExpress: Bool
    /// The function has a function-level reset: the FLR bit of the PCIe capability's Device
    /// Capabilities, or for a conventional function an Advanced Features capability with
    /// TP and FLR. vfio-pci also finds a PM reset (``powerManagement``) and a bus reset (a
    /// function alone on a non-root bus); with none of the three, `VFIO_DEVICE_FLAGS_RESET`
    /// is clear and `VFIO_DEVICE_RESET` fails with `EINVAL`.
    public var supportsReset: Bool
    /// A PCI Power Management capability; nil for none (QEMU's edu has none).
    public var powerManagement: PowerManagementDescription? = nil
    /// Adds Intel's Scalable IOV DVSEC (vendor 0x8086, ID 5) at 0x100 with its "IMS supported"
    /// bit set; needs `isPCIExpress` for the extended config space.
    public var hasIMS = false

    public init(
        vendorID: UInt16, deviceID: UInt16, classCode: UInt32, revision: UInt8 = 0,
        subsystemVendorID: UInt16 = 0x1af4, subsystemID: UInt16 = 0x1100,
        bars: [BARDescription], interruptPin: UInt8 = 1, msi: MSIDescription? = nil,
        msix: MSIXDescription? = nil, isPCIExpress: Bool = false, supportsReset: Bool = true
    ) {
        self.vendorID = vendorID
        self.deviceID = deviceID
        self.classCode = classCode
        self.revision = revision
        self.subsystemVendorID = subsystemVendorID
        self.subsystemID = subsystemID
        self.bars = bars
        self.interruptPin = interruptPin
        self.msi = msi
        self.msix = msix
        self.isPCIExpress = isPCIExpress
        self.supportsReset = supportsReset
    }
}

/// A PCI Power Management capability.
public struct PowerManagementDescription: Sendable, Equatable {
    /// PMCSR's No_Soft_Reset: the function keeps its state across D3hot -> D0, so the PCI
    /// core cannot reset it that way (`pci_pm_reset` needs it clear).
    public var noSoftReset: Bool

    public init(noSoftReset: Bool) { self.noSoftReset = noSoftReset }
}

/// One memory BAR.
public struct BARDescription: Sendable, Equatable {
    public enum Backing: Sendable, Equatable {
        /// Plain memory shared between the device and whoever maps it (a memfd): mmappable.
        case sharedMemory
        /// Registers, mappable as on hardware: pread/pwrite call the device model, and so does
        /// every load and store through a mapping (it faults into the model; CVFIO's
        /// `cvfio_mmio_trap.h`). On an architecture the trap cannot decode, pread/pwrite only.
        case registers
        /// Every access calls the device model: pread/pwrite only, like a BAR smaller than a
        /// page or one vfio-pci cannot mmap.
        case trapped
    }

    public var index: Int
    /// A power of two, at least 16 bytes.
    public var size: Int
    public var backing: Backing
    public var is64Bit: Bool
    public var prefetchable: Bool

    public init(index: Int, size: Int, backing: Backing, is64Bit: Bool = false, prefetchable: Bool = false) {
        self.index = index
        self.size = size
        self.backing = backing
        self.is64Bit = is64Bit
        self.prefetchable = prefetchable
    }
}

/// An MSI capability.
public struct MSIDescription: Sendable, Equatable {
    /// 1, 2, 4, 8, 16 or 32.
    public var vectors: Int
    public var is64Bit: Bool
    public var perVectorMasking: Bool

    public init(vectors: Int = 1, is64Bit: Bool = true, perVectorMasking: Bool = false) {
        self.vectors = vectors
        self.is64Bit = is64Bit
        self.perVectorMasking = perVectorMasking
    }
}

/// An MSI-X capability: the table and the pending-bit array live in BARs of the device.
public struct MSIXDescription: Sendable, Equatable {
    /// 1 to 2048.
    public var tableSize: Int
    public var tableBAR: Int
    public var tableOffset: Int
    public var pbaBAR: Int
    public var pbaOffset: Int

    public init(tableSize: Int, tableBAR: Int, tableOffset: Int, pbaBAR: Int, pbaOffset: Int) {
        self.tableSize = tableSize
        self.tableBAR = tableBAR
        self.tableOffset = tableOffset
        self.pbaBAR = pbaBAR
        self.pbaOffset = pbaOffset
    }
}
