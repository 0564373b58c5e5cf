import SystemPackage
import PCI

/// Where a function's interrupts go once they leave the hardware: the host driver it is bound
/// to (vfio-pci or uio_pci_generic). Called with the kernel lock held.
protocol InterruptRouter: AnyObject {
    /// The INTx line is asserted and not disabled in the command register.
    func intxFired(_ function: PCIFunction)
    /// The eventfd that an unmasked MSI or MSI-X `vector` is delivered to, if the host set one.
    func messageTarget(msix: Bool, vector: Int) -> Int32?
}

/// The hardware side of a plugged device: its physical config space, memory BARs, MSI-X
/// table and INTx line. All state is guarded by the kernel lock.
final class PCIFunction {
    let address: PCIAddress
    let device: SimulatedDevice
    let description: DeviceDescription
    let layout: ConfigSpaceLayout
    let barAddresses: [Int: UInt64]
    private let powerOnConfig: [UInt8]
    private let writable: [UInt8]
    private(set) var config: [UInt8]
    /// Memory-backed BARs by index.
    let barMemory: [Int: SharedMemory]
    /// MSI-X table and PBA storage when they sit in a trapped BAR (vfio-pci never lets
    /// software reach them there; the host kernel programs them).
    private let privateMSIX: UnsafeMutableRawPointer?
    var intxAsserted = false
    weak var router: InterruptRouter?
    /// Interrupts dropped because bus mastering was off or MSI/MSI-X was disabled.
    var droppedMessages = 0
    /// Resets of the function (FLR, or any other reset vfio-pci or the PCI core made).
    var resets = 0

    init(address: PCIAddress, device: SimulatedDevice, barAddresses: [Int: UInt64]) throws(Errno) {
        self.address = address
        self.device = device
        let d = device.description
        description = d
        self.barAddresses = barAddresses
        let built = ConfigSpaceBuilder(d, barAddresses: barAddresses)
        layout = built.layout
        powerOnConfig = built.bytes
        writable = built.writable
        config = built.bytes
        var memory: [Int: SharedMemory] = [:]
        for bar in d.bars where bar.backing == .sharedMemory {
            memory[bar.index] = try SharedMemory(name: "vfiomock-\(address)-bar\(bar.index)", size: bar.size)
        }
        barMemory = memory
        if let msix = d.msix, memory[msix.tableBAR] == nil || memory[msix.pbaBAR] == nil {
            let p = UnsafeMutableRawPointer.allocate(byteCount: Self.msixPrivateSize(msix), alignment: 8)
            p.initializeMemory(as: UInt8.self, repeating: 0, count: Self.msixPrivateSize(msix))
            privateMSIX = p
        } else {
            privateMSIX = nil
        }
        resetMSIXTable()
    }

    deinit { privateMSIX?.deallocate() }

    private static func msixPrivateSize(_ m: MSIXDescription) -> Int { m.tableSize * 16 + ((m.tableSize + 63) / 64) * 8 }

    // MARK: Config space

    func read(config offset: Int, width: Int) -> UInt32 {
        var v: UInt32 = 0
        for i in 0..<width where offset + i < config.count { v |= UInt32(config[offset + i]) << (8 * UInt32(i)) }
        return v
    }

    var command: UInt16 { UInt16(read(config: PCIConfig.command, width: 2)) }
    var busMasterEnabled: Bool { command & PCIConfig.commandBusMaster != 0 }
    var msiEnabled: Bool { layout.msi.map { UInt16(read(config: $0 + 2, width: 2)) & PCIConfig.msiFlagsEnable != 0 } ?? false }
    var msixEnabled: Bool { msixFlags & PCIConfig.msixFlagsEnable != 0 }
    var msixFunctionMasked: Bool { msixFlags & PCIConfig.msixFlagsMaskAll != 0 }
    private var msixFlags: UInt16 { layout.msix.map { UInt16(read(config: $0 + 2, width: 2)) } ?? 0 }

    /// A write as the hardware takes it: only writable bits change. Interrupt state that the
    /// write changes (INTx disable, MSI masks) takes effect at once.
    func write(config offset: Int, width: Int, value: UInt32) {
        for i in 0..<width where offset + i < config.count {
            let m = writable[offset + i]
            let b = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i)))
            config[offset + i] = (config[offset + i] & ~m) | (b & m)
        }
        updateStatusInterrupt()
        if overlaps(offset, width, PCIConfig.command, 2) { evaluateINTx() }
        if layout.msi != nil, overlaps(offset, width, layout.msiMaskOffset, 4) { deliverPendingMSI() }
    }

    /// Sets bits the host kernel itself controls (MSI enable, MSI-X enable), bypassing the
    /// writable mask as the PCI core does through its own accessors.
    func hostSet(config offset: Int, width: Int, value: UInt32) {
        for i in 0..<width { config[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
        if overlaps(offset, width, PCIConfig.command, 2) { evaluateINTx() }
    }

    private func overlaps(_ a: Int, _ alen: Int, _ b: Int, _ blen: Int) -> Bool { a < b + blen && b < a + alen }

    /// Power-on state of config space, MSI-X table and INTx; the device resets its own state.
    func resetHardware() {
        resets += 1
        config = powerOnConfig
        intxAsserted = false
        resetMSIXTable()
    }

    // MARK: MSI-X table

    /// The 16-byte entry `vector` of the MSI-X table, wherever it lives.
    func msixEntry(_ vector: Int) -> UnsafeMutableRawPointer? {
        guard let m = description.msix, vector >= 0, vector < m.tableSize else { return nil }
        if let mem = barMemory[m.tableBAR] { return mem.bytes + m.tableOffset + 16 * vector }
        return privateMSIX.map { $0 + 16 * vector }
    }

    /// Where the byte at `offset` of BAR `bar` lives when the MSI-X table or PBA holds it (a
    /// mapping of the BAR reaches them, as on hardware); nil for any other byte.
    func msixStructure(bar: Int, offset: Int) -> UnsafeMutableRawPointer? {
        guard let m = description.msix else { return nil }
        if bar == m.tableBAR, offset >= m.tableOffset, offset < m.tableOffset + 16 * m.tableSize {
            return msixEntry((offset - m.tableOffset) / 16).map { $0 + (offset - m.tableOffset) % 16 }
        }
        let pbaBytes = 8 * ((m.tableSize + 63) / 64)
        if bar == m.pbaBAR, offset >= m.pbaOffset, offset < m.pbaOffset + pbaBytes {
            return pbaWord(((offset - m.pbaOffset) / 8) * 64).map { $0 + (offset - m.pbaOffset) % 8 }
        }
        return nil
    }

    private func pbaWord(_ vector: Int) -> UnsafeMutableRawPointer? {
        guard let m = description.msix else { return nil }
        if let mem = barMemory[m.pbaBAR] { return mem.bytes + m.pbaOffset + 8 * (vector / 64) }
        return privateMSIX.map { $0 + m.tableSize * 16 + 8 * (vector / 64) }
    }

    func msixVectorMasked(_ vector: Int) -> Bool {
        guard let e = msixEntry(vector) else { return true }
        return e.loadUnaligned(fromByteOffset: 12, as: UInt32.self) & 1 != 0
    }

    /// The host programs an entry's message and mask bit, as the PCI MSI core does.
    func programMSIX(vector: Int, address: UInt64, data: UInt32, masked: Bool) {
        guard let e = msixEntry(vector) else { return }
        e.storeBytes(of: UInt32(truncatingIfNeeded: address), toByteOffset: 0, as: UInt32.self)
        e.storeBytes(of: UInt32(truncatingIfNeeded: address >> 32), toByteOffset: 4, as: UInt32.self)
        e.storeBytes(of: data, toByteOffset: 8, as: UInt32.self)
        e.storeBytes(of: masked ? 1 : 0, toByteOffset: 12, as: UInt32.self)
    }

    func msixPending(_ vector: Int) -> Bool {
        guard let w = pbaWord(vector) else { return false }
        return w.load(as: UInt64.self) & (1 << UInt64(vector % 64)) != 0
    }

    private func setMSIXPending(_ vector: Int, _ on: Bool) {
        guard let w = pbaWord(vector) else { return }
        let bit: UInt64 = 1 << UInt64(vector % 64)
        let old = w.load(as: UInt64.self)
        w.storeBytes(of: on ? old | bit : old & ~bit, as: UInt64.self)
    }

    private func resetMSIXTable() {
        guard let m = description.msix else { return }
        for v in 0..<m.tableSize {
            programMSIX(vector: v, address: 0, data: 0, masked: true)
            setMSIXPending(v, false)
        }
    }

    // MARK: Interrupt signalling (kernel lock held)

    func setINTx(_ asserted: Bool) {
        intxAsserted = asserted
        updateStatusInterrupt()
        evaluateINTx()
    }

    private func updateStatusInterrupt() {
        if intxAsserted { config[PCIConfig.status] |= UInt8(PCIConfig.statusInterrupt) }
        else { config[PCIConfig.status] &= ~UInt8(PCIConfig.statusInterrupt) }
    }

    /// A level interrupt reaches the host while the line is asserted and not disabled.
    private func evaluateINTx() {
        if intxAsserted && command & PCIConfig.commandINTxDisable == 0 { router?.intxFired(self) }
    }

    /// Sends MSI `vector`: dropped unless bus mastering and MSI are on and the vector is
    /// enabled; held pending while its mask bit is set.
    func signalMSI(_ vector: Int) {
        guard let cap = layout.msi, busMasterEnabled, msiEnabled else { droppedMessages += 1; return }
        let flags = UInt16(read(config: cap + 2, width: 2))
        let enabledVectors = 1 << Int((flags >> 4) & 7)
        guard vector >= 0, vector < enabledVectors else { droppedMessages += 1; return }
        let bit = UInt32(1) << UInt32(vector)
        if flags & PCIConfig.msiFlagsMaskBit != 0, read(config: layout.msiMaskOffset, width: 4) & bit != 0 {
            hostSet(config: layout.msiPendingOffset, width: 4, value: read(config: layout.msiPendingOffset, width: 4) | bit)
            return
        }
        deliver(msix: false, vector: vector)
    }

    private func deliverPendingMSI() {
        guard busMasterEnabled, msiEnabled else { return }
        let pending = read(config: layout.msiPendingOffset, width: 4)
        let mask = read(config: layout.msiMaskOffset, width: 4)
        let ready = pending & ~mask
        guard ready != 0 else { return }
        hostSet(config: layout.msiPendingOffset, width: 4, value: pending & ~ready)
        for v in 0..<32 where ready & (1 << UInt32(v)) != 0 { deliver(msix: false, vector: v) }
    }

    /// Sends MSI-X `vector`: dropped unless bus mastering and MSI-X are on; held in the PBA
    /// while the function or the vector is masked.
    func signalMSIX(_ vector: Int) {
        guard let m = description.msix, vector >= 0, vector < m.tableSize, busMasterEnabled, msixEnabled else {
            droppedMessages += 1
            return
        }
        deliverPendingMSIX()
        if msixFunctionMasked || msixVectorMasked(vector) {
            setMSIXPending(vector, true)
            return
        }
        deliver(msix: true, vector: vector)
    }

    /// Sends every pending MSI-X vector whose mask is now clear. Software can clear a mask by
    /// a store to a mapped table that the mock cannot see, so this runs on each signal and
    /// whenever the host reprograms the table.
    func deliverPendingMSIX() {
        guard let m = description.msix, busMasterEnabled, msixEnabled, !msixFunctionMasked else { return }
        for v in 0..<m.tableSize where msixPending(v) && !msixVectorMasked(v) {
            setMSIXPending(v, false)
            deliver(msix: true, vector: v)
        }
    }

    private func deliver(msix: Bool, vector: Int) {
        guard let fd = router?.messageTarget(msix: msix, vector: vector) else { droppedMessages += 1; return }
        signalEventFD(fd)
    }
}
