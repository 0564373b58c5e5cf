/// The hardware facts of a simulated PCI function, from which the mock builds its config
/// space, its BARs and its interrupt capabilities.
public struct DeviceDescription: Sendable {
    /// The vendor ID (config offset 0x00).
    public var vendorID: UInt16
    /// The device ID (config offset 0x02).
    public var deviceID: UInt16
    /// 24-bit class code: base class, subclass, programming interface.
    public var classCode: UInt32
    /// The revision ID (config offset 0x08).
    public var revision: UInt8
    /// The subsystem vendor ID (config offset 0x2c); 0x1af4, QEMU's default (Red Hat), by default.
    public var subsystemVendorID: UInt16
    /// The subsystem ID (config offset 0x2e); 0x1100 (QEMU's) by default.
    public var subsystemID: UInt16
    /// The function's memory BARs; indexes not listed are unimplemented (read as 0).
    public var bars: [BARDescription]
    /// Interrupt pin 1 (INTA) to 4, or 0 when the device has no INTx.
    public var interruptPin: UInt8
    /// Multiple Message Capable as a vector count (1, 2, 4 … 32); nil for no MSI capability.
    public var msi: MSIDescription?
    /// The MSI-X capability, with its table and PBA in the function's BARs; nil for none.
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

    /// A function with the given facts; no power management capability and no IMS unless set
    /// afterwards.
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

    /// A capability with PMCSR's No_Soft_Reset as given.
    public init(noSoftReset: Bool) { self.noSoftReset = noSoftReset }
}

/// One memory BAR.
public struct BARDescription: Sendable, Equatable {
    /// What is behind a BAR, and so which accesses reach the device model.
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

    /// The BAR number, 0 to 5; a 64-bit BAR also takes the next one.
    public var index: Int
    /// A power of two, at least 16 bytes.
    public var size: Int
    /// What is behind the BAR.
    public var backing: Backing
    /// A 64-bit memory BAR (type 10b in the BAR's bits 2:1), taking two BAR slots.
    public var is64Bit: Bool
    /// The BAR's prefetchable bit (bit 3).
    public var prefetchable: Bool

    /// A BAR as described; 32-bit and non-prefetchable by default.
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
    /// The capability's 64-bit address field (flag bit 7); true by default.
    public var is64Bit: Bool
    /// The capability's per-vector mask and pending bits (flag bit 8).
    public var perVectorMasking: Bool

    /// A capability with the given vector count and flags.
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
    /// The BAR that holds the MSI-X table (the table BIR).
    public var tableBAR: Int
    /// The table's byte offset in its BAR; 8-byte aligned, since the capability keeps the BIR in
    /// its low 3 bits.
    public var tableOffset: Int
    /// The BAR that holds the pending-bit array (the PBA BIR).
    public var pbaBAR: Int
    /// The PBA's byte offset in its BAR; 8-byte aligned, as ``tableOffset``.
    public var pbaOffset: Int

    /// A capability with the table and PBA where given; nothing is checked.
    public init(tableSize: Int, tableBAR: Int, tableOffset: Int, pbaBAR: Int, pbaOffset: Int) {
        self.tableSize = tableSize
        self.tableBAR = tableBAR
        self.tableOffset = tableOffset
        self.pbaBAR = pbaBAR
        self.pbaOffset = pbaOffset
    }
}
