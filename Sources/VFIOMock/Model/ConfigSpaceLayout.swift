/// PCI config-space offsets and bits the mock uses (from the PCI Local Bus and PCIe specs,
/// as `include/uapi/linux/pci_regs.h` names them).
enum PCIConfig {
    static let vendorID = 0x00, deviceID = 0x02, command = 0x04, status = 0x06
    static let revision = 0x08, classCode = 0x09, cacheLineSize = 0x0c, latencyTimer = 0x0d
    static let headerType = 0x0e, bar0 = 0x10, subsystemVendorID = 0x2c, subsystemID = 0x2e
    static let romAddress = 0x30, capabilityPointer = 0x34, interruptLine = 0x3c, interruptPin = 0x3d

    static let commandIO: UInt16 = 1 << 0, commandMemory: UInt16 = 1 << 1, commandBusMaster: UInt16 = 1 << 2
    static let commandParity: UInt16 = 1 << 6, commandSERR: UInt16 = 1 << 8, commandINTxDisable: UInt16 = 1 << 10
    static let statusInterrupt: UInt16 = 1 << 3, statusCapabilityList: UInt16 = 1 << 4

    static let capIDPCIExpress: UInt8 = 0x10, capIDMSI: UInt8 = 0x05, capIDMSIX: UInt8 = 0x11
    static let capIDPowerManagement: UInt8 = 0x01, capIDAdvancedFeatures: UInt8 = 0x13
    /// PMCSR (PM capability + 4): power state, No_Soft_Reset.
    static let pmControl = 4, pmControlStateMask: UInt16 = 0x3, pmControlNoSoftReset: UInt16 = 1 << 3
    /// AF capability: length (+2), capabilities (+3: TP, FLR), control (+4: initiate FLR).
    static let afCapabilities = 3, afControl = 4, afCapTP: UInt8 = 1 << 0, afCapFLR: UInt8 = 1 << 1, afControlFLR: UInt8 = 1 << 0

    static let msiFlagsEnable: UInt16 = 1 << 0, msiFlags64Bit: UInt16 = 1 << 7, msiFlagsMaskBit: UInt16 = 1 << 8
    static let msixFlagsMaskAll: UInt16 = 1 << 14, msixFlagsEnable: UInt16 = 1 << 15
    static let pcieDevCapFLR: UInt32 = 1 << 28
}

/// Where the capabilities of a simulated function sit in its config space.
struct ConfigSpaceLayout {
    var size: Int
    var pcie: Int?
    var msi: Int?
    var msix: Int?
    var powerManagement: Int?
    var advancedFeatures: Int?

    /// MSI register offsets, which move with the 64-bit flag.
    var msiDataOffset: Int { (msi ?? 0) + (msi64 ? 0x0c : 0x08) }
    var msiMaskOffset: Int { (msi ?? 0) + (msi64 ? 0x10 : 0x0c) }
    var msiPendingOffset: Int { (msi ?? 0) + (msi64 ? 0x14 : 0x10) }
    var msi64 = false
}

/// Builds the power-on config space of a function and the mask of bits its hardware lets
/// software write.
struct ConfigSpaceBuilder {
    private(set) var bytes: [UInt8]
    private(set) var writable: [UInt8]
    private(set) var layout: ConfigSpaceLayout

    init(_ d: DeviceDescription, barAddresses: [Int: UInt64]) {
        let size = d.isPCIExpress ? 4096 : 256
        bytes = [UInt8](repeating: 0, count: size)
        writable = [UInt8](repeating: 0, count: size)
        layout = ConfigSpaceLayout(size: size)
        put16(PCIConfig.vendorID, d.vendorID)
        put16(PCIConfig.deviceID, d.deviceID)
        put8(PCIConfig.revision, d.revision)
        put8(PCIConfig.classCode, UInt8(d.classCode & 0xff))
        put8(PCIConfig.classCode + 1, UInt8((d.classCode >> 8) & 0xff))
        put8(PCIConfig.classCode + 2, UInt8((d.classCode >> 16) & 0xff))
        put16(PCIConfig.subsystemVendorID, d.subsystemVendorID)
        put16(PCIConfig.subsystemID, d.subsystemID)
        put8(PCIConfig.interruptPin, d.interruptPin)
        put8(PCIConfig.interruptLine, d.interruptPin == 0 ? 0xff : 10)
        mask16(
            PCIConfig.command,
            PCIConfig.commandIO | PCIConfig.commandMemory | PCIConfig.commandBusMaster
                | PCIConfig.commandParity | PCIConfig.commandSERR | PCIConfig.commandINTxDisable)
        mask8(PCIConfig.cacheLineSize, 0xff)
        mask8(PCIConfig.latencyTimer, 0xff)
        mask8(PCIConfig.interruptLine, 0xff)
        for bar in d.bars {
            let at = PCIConfig.bar0 + 4 * bar.index
            let address = barAddresses[bar.index] ?? 0
            var low = UInt32(truncatingIfNeeded: address) & ~0xf
            if bar.is64Bit { low |= 0x4 }
            if bar.prefetchable { low |= 0x8 }
            put32(at, low)
            mask32(at, ~UInt32(truncatingIfNeeded: bar.size - 1) & ~0xf)
            if bar.is64Bit {
                put32(at + 4, UInt32(truncatingIfNeeded: address >> 32))
                mask32(at + 4, ~UInt32(truncatingIfNeeded: UInt64(bar.size - 1) >> 32))
            }
        }
        buildCapabilities(d)
        if d.hasIMS && size == 4096 { buildScalableIOVDVSEC() }
    }

    /// The Scalable IOV DVSEC at 0x100: DVSEC header (ID 0x23), vendor 0x8086 revision 0 length
    /// 0x18, DVSEC ID 5, and bit 0 of DVSEC+0x14, "IMS supported".
    private mutating func buildScalableIOVDVSEC() {
        let at = 0x100
        put32(at, 0x0023 | 1 << 16)
        put32(at + 4, 0x8086 | 0x18 << 20)
        put16(at + 8, 5)
        put32(at + 0x14, 1)
    }

    private mutating func buildCapabilities(_ d: DeviceDescription) {
        var caps: [(id: UInt8, length: Int)] = []
        if d.isPCIExpress { caps.append((PCIConfig.capIDPCIExpress, 0x3c)) }
        if let msi = d.msi { caps.append((PCIConfig.capIDMSI, msi.is64Bit ? 0x18 : 0x14)) }
        if d.msix != nil { caps.append((PCIConfig.capIDMSIX, 0x0c)) }
        if d.powerManagement != nil { caps.append((PCIConfig.capIDPowerManagement, 0x08)) }
        if d.supportsReset && !d.isPCIExpress { caps.append((PCIConfig.capIDAdvancedFeatures, 0x06)) }
        guard !caps.isEmpty else { return }
        put16(PCIConfig.status, PCIConfig.statusCapabilityList)
        var at = 0x40
        put8(PCIConfig.capabilityPointer, UInt8(at))
        for (i, cap) in caps.enumerated() {
            let next = i + 1 < caps.count ? at + ((cap.length + 3) & ~3) : 0
            put8(at, cap.id)
            put8(at + 1, UInt8(next))
            switch cap.id {
            case PCIConfig.capIDPCIExpress:
                layout.pcie = at
                put16(at + 2, 0x0002)
                put32(at + 4, d.supportsReset ? PCIConfig.pcieDevCapFLR : 0)
                mask16(at + 8, 0x7fff)
            case PCIConfig.capIDMSI:
                let msi = d.msi!
                layout.msi = at
                layout.msi64 = msi.is64Bit
                var flags = UInt16(msi.vectors.trailingZeroBitCount) << 1
                if msi.is64Bit { flags |= PCIConfig.msiFlags64Bit }
                if msi.perVectorMasking { flags |= PCIConfig.msiFlagsMaskBit }
                put16(at + 2, flags)
                mask16(at + 2, PCIConfig.msiFlagsEnable | 0x70)
                mask32(at + 4, ~3)
                if msi.is64Bit { mask32(at + 8, ~0) }
                mask16(layout.msiDataOffset, 0xffff)
                if msi.perVectorMasking {
                    mask32(layout.msiMaskOffset, msi.vectors == 32 ? ~0 : (1 << UInt32(msi.vectors)) - 1)
                }
            case PCIConfig.capIDPowerManagement:
                layout.powerManagement = at
                put16(at + 2, 0x0003)
                put16(at + PCIConfig.pmControl, d.powerManagement!.noSoftReset ? PCIConfig.pmControlNoSoftReset : 0)
                mask16(at + PCIConfig.pmControl, PCIConfig.pmControlStateMask)
            case PCIConfig.capIDAdvancedFeatures:
                layout.advancedFeatures = at
                put8(at + 2, 0x06)
                put8(at + PCIConfig.afCapabilities, PCIConfig.afCapTP | PCIConfig.afCapFLR)
                mask8(at + PCIConfig.afControl, PCIConfig.afControlFLR)
            default:
                let msix = d.msix!
                layout.msix = at
                put16(at + 2, UInt16(msix.tableSize - 1))
                put32(at + 4, UInt32(msix.tableOffset) | UInt32(msix.tableBAR))
                put32(at + 8, UInt32(msix.pbaOffset) | UInt32(msix.pbaBAR))
                mask16(at + 2, PCIConfig.msixFlagsEnable | PCIConfig.msixFlagsMaskAll)
            }
            at = next
        }
    }

    private mutating func put8(_ at: Int, _ v: UInt8) { bytes[at] = v }
    private mutating func put16(_ at: Int, _ v: UInt16) { for i in 0..<2 { bytes[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
    private mutating func put32(_ at: Int, _ v: UInt32) { for i in 0..<4 { bytes[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
    private mutating func mask8(_ at: Int, _ v: UInt8) { writable[at] = v }
    private mutating func mask16(_ at: Int, _ v: UInt16) { for i in 0..<2 { writable[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
    private mutating func mask32(_ at: Int, _ v: UInt32) { for i in 0..<4 { writable[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
}
