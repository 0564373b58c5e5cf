import PCI
import Synchronization
import SystemPackage
import Testing
import VFIODrivers
import VFIOKit
import VFIOMock

/// Registers over the first page of a shared-memory BAR, one of each width.
enum ScratchRegisters: RegisterLayout {
    static let extent = 0x1000
    static var byte: Register<Self, UInt8> { .init(0x01) }
    static var half: Register<Self, UInt16> { .init(0x02) }
    static var word: Register<Self, UInt32> { .init(0x10) }
    static var quad: Register<Self, UInt64> { .init(0x18) }
}

/// Registers spanning the first 16 KiB of a BAR, across an MSI-X table page at 0x2000.
enum SpanningRegisters: RegisterLayout {
    static let extent = 0x4000
    static var low: Register<Self, UInt32> { .init(0x0100) }
    static var nearTable: Register<Self, UInt32> { .init(0x2800) }
    static var high: Register<Self, UInt64> { .init(0x3ff8) }
}

/// A layout larger than the 16 KiB BAR it is tried on.
enum OversizedRegisters: RegisterLayout {
    static let extent = 0x8000
    static var last: Register<Self, UInt32> { .init(0x7ffc) }
}

/// Regions, the MMIO views over them and config space, through the public API.
@Suite struct RegionAccessTests {
    @Test(arguments: Backend.explicit)
    func aSharedMemoryBARIsMappedAndStoresReachTheDevice(_ backend: Backend) throws {
        let (_, model, device) = try MockMachine.opening(Devices.memory(), on: backend)
        defer { device.close() }
        let bar = try device.bar(0)
        #expect(bar.info.isFullyMappable)
        let registers = try bar.mmio(ScratchRegisters.self)
        #expect(registers.isMapped)
        let memory = try #require(model.bus?.barMemory(0)).bytes

        registers.write(ScratchRegisters.word, 0xdead_beef)
        registers.write(ScratchRegisters.quad, 0x0123_4567_89ab_cdef)
        registers.write(ScratchRegisters.byte, 0x5a)
        registers.write(ScratchRegisters.half, 0xa55a)
        #expect(memory.load(fromByteOffset: 0x10, as: UInt32.self) == 0xdead_beef)
        #expect(memory.load(fromByteOffset: 0x18, as: UInt64.self) == 0x0123_4567_89ab_cdef)
        #expect(memory[0x01] == 0x5a && memory[0x00] == 0)
        #expect(memory.load(fromByteOffset: 0x02, as: UInt16.self) == 0xa55a)

        // What the device stores, the driver loads.
        memory.storeBytes(of: 0xfeed_f00d, toByteOffset: 0x10, as: UInt32.self)
        #expect(registers.read(ScratchRegisters.word) == 0xfeed_f00d)
        #expect(try bar.read(UInt32.self, at: 0x10) == 0xfeed_f00d)
        // The last word of the BAR is in reach, and past it is refused.
        try bar.write(UInt32(0x7777_7777), at: bar.size - 4)
        #expect(memory.load(fromByteOffset: bar.size - 4, as: UInt32.self) == 0x7777_7777)
    }

    /// edu's register BAR answers alike mapped (as vfio-pci maps QEMU's edu, every load and
    /// store faulting into the model) and trapped (a BAR vfio-pci cannot map: pread/pwrite).
    /// The liveness register inverts what was just written, which a store landing in plain
    /// memory would not.
    @Test(arguments: Backend.explicit, [true, false])
    func aRegisterBARReachesItsModelMappedOrTrapped(_ backend: Backend, mapped: Bool) throws {
        let (machine, _, device) = try MockMachine.opening(Devices.edu(trapped: !mapped), on: backend)
        defer { device.close() }
        let bar = try device.bar(0)
        // vfio-pci says whether the BAR can be mapped; sysfs cannot tell, so UIO tries.
        #expect(bar.info.mappableAreas.isEmpty == (!mapped && backend != .uio))
        #expect((bar.pointer(covering: 0..<bar.size) != nil) == mapped)
        let registers = try bar.mmio(EduRegisters.self)
        #expect(registers.isMapped == mapped)
        let before = machine.kernel.registerAccessesThroughMappings
        #expect(registers.read(EduRegisters.identification) == 0x0100_00ed)
        for probe: UInt32 in [0, 0x1234_5678, 0xffff_ffff] {
            registers.write(EduRegisters.liveness, probe)
            #expect(registers.read(EduRegisters.liveness) == ~probe)
        }
        // 64-bit registers go through as one 8-byte access.
        registers.write(EduRegisters.dmaSource, 0x1_2345_6000)
        #expect(registers.read(EduRegisters.dmaSource) == 0x1_2345_6000)
        #expect(machine.kernel.registerAccessesThroughMappings == before + (mapped ? 9 : 0))
        #expect(bar.accessErrors == 0)
    }

    @Test func aSparseMSIXBARIsMappedAroundTheTableAndStillReadsRight() throws {
        let machine = MockMachine { $0.msixTableMapping = .sparseAroundTable }
        let model = Devices.memory(msix: 4)
        let device = try machine.open(model, on: .legacy)
        defer { device.close() }
        let bar = try device.bar(0)
        #expect(bar.info.capabilities.contains(.sparseMmap([0..<0x2000, 0x3000..<0x10000])))
        #expect(!bar.info.isFullyMappable)
        #expect(bar.pointer(covering: 0x1ffc..<0x2000) != nil)
        #expect(bar.pointer(covering: 0x2000..<0x2004) == nil)
        #expect(bar.pointer(covering: 0x2800..<0x2804) == nil)
        #expect(bar.pointer(covering: 0x3000..<0x3004) != nil)
        // A view spanning the hole cannot be one mapping; it falls back to pread/pwrite.
        let registers = try bar.mmio(SpanningRegisters.self)
        #expect(!registers.isMapped)
        let memory = try #require(model.bus?.barMemory(0)).bytes
        registers.write(SpanningRegisters.low, 0x1111_1111)
        registers.write(SpanningRegisters.nearTable, 0x2222_2222)
        registers.write(SpanningRegisters.high, 0x3333_3333_4444_4444)
        #expect(memory.load(fromByteOffset: 0x0100, as: UInt32.self) == 0x1111_1111)
        #expect(memory.load(fromByteOffset: 0x2800, as: UInt32.self) == 0x2222_2222)
        #expect(memory.load(fromByteOffset: 0x3ff8, as: UInt64.self) == 0x3333_3333_4444_4444)
        #expect(registers.read(SpanningRegisters.nearTable) == 0x2222_2222)
        #expect(registers.read(SpanningRegisters.high) == 0x3333_3333_4444_4444)
        // Plain region accesses use whichever path covers them.
        memory.storeBytes(of: 0xabcd_ef01, toByteOffset: 0x2804, as: UInt32.self)
        #expect(try bar.read(UInt32.self, at: 0x2804) == 0xabcd_ef01)
        try bar.write(UInt32(0x5555_5555), at: 0x5000)
        #expect(memory.load(fromByteOffset: 0x5000, as: UInt32.self) == 0x5555_5555)
        #expect(bar.accessErrors == 0)
    }

    /// A trapped access that fails through MMIO (which cannot throw) is kept: checkAccesses()
    /// throws the first, naming the call, the offset and the errno, once; a read gives all ones.
    @Test func aFailedTrappedAccessIsKeptForTheNextCheck() throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.edu(trapped: true), at: MockMachine.primary)
        let failing = Mutex(false)
        let seam = InterposedKernel(machine.kernel) { (call) throws(Errno) in
            if call == .pwrite || call == .pread, failing.withLock({ $0 }) { throw .ioError }
        }
        let device = try PCIDevice.open(MockMachine.primary, backend: .legacy, system: seam)
        defer { device.close() }
        let view = try device.bar(0).mmio(EduRegisters.self)
        #expect(!view.isMapped)
        view.write(EduRegisters.liveness, 1)
        try view.region.checkAccesses()
        failing.withLock { $0 = true }
        view.write(EduRegisters.liveness, 2)
        #expect(view.read(EduRegisters.identification) == 0xffff_ffff)
        failing.withLock { $0 = false }
        #expect(view.region.accessErrors == 2)
        #expect {
            try view.region.checkAccesses()
        } throws: { error in
            let text = "\(error)"
            return text.contains("pwrite") && text.contains("at 0x4") && text.contains("\(Errno.ioError)")
        }
        try view.region.checkAccesses()
        #expect(view.read(EduRegisters.liveness) == ~UInt32(1), "the failed write did not reach the device")
    }

    @Test func anMSIXMappableBARIsMappedWhole() throws {
        let machine = MockMachine { $0.msixTableMapping = .mappable }
        let device = try machine.open(Devices.memory(msix: 4), on: .iommufd)
        defer { device.close() }
        let bar = try device.bar(0)
        #expect(bar.info.capabilities.contains(.msixMappable))
        #expect(bar.info.isFullyMappable)
        #expect(bar.pointer(covering: 0x2000..<0x2010) != nil)
        #expect(try bar.mmio(SpanningRegisters.self).isMapped)
    }

    @Test(arguments: Backend.explicit)
    func configReadsAndWritesReachTheFunction(_ backend: Backend) throws {
        let (machine, _, device) = try MockMachine.opening(Devices.edu(), on: backend)
        defer { device.close() }
        #expect(try device.readConfig(UInt32.self, at: 0x00) == 0x11e8_1234)
        #expect(try device.readConfig(UInt8.self, at: 0x08) == 0x10)  // revision
        #expect(try device.readConfig(UInt32.self, at: 0x08) >> 8 == 0x00ff00)  // class
        try device.writeConfig(UInt8(0x40), at: 0x0d)  // latency timer
        #expect(try device.readConfig(UInt8.self, at: 0x0d) == 0x40)
        #expect(machine.kernel.physicalConfig(of: MockMachine.primary)?[0x0d] == 0x40)
        // BAR sizing: all ones written, the size mask read back (1 MiB, 32-bit memory).
        let saved: UInt32 = try device.readConfig(at: 0x10)
        try device.writeConfig(UInt32.max, at: 0x10)
        #expect(try device.readConfig(UInt32.self, at: 0x10) == 0xfff0_0000)
        try device.writeConfig(saved, at: 0x10)
        #expect(throws: VFIOError.regionTooSmall(device.address, index: 7, size: 256, needed: 258)) {
            try device.readConfig(UInt16.self, at: 256)
        }
    }

    @Test(arguments: Backend.explicit)
    func busMasterTurnsOnAndOffInTheFunctionsCommandRegister(_ backend: Backend) throws {
        let (_, model, device) = try MockMachine.opening(Devices.memory(), on: backend)
        defer { device.close() }
        let bus = try #require(model.bus)
        #expect(!bus.busMasterEnabled)
        try device.setBusMaster(true)
        #expect(bus.busMasterEnabled)
        #expect(try device.readConfig(UInt16.self, at: 0x04) & 0x4 != 0)
        // Memory decode, which BAR access needs, is left alone.
        #expect(bus.command & 0x2 != 0)
        try device.setBusMaster(false)
        #expect(!bus.busMasterEnabled)
        #expect(bus.command & 0x2 != 0)
    }

    @Test(arguments: Backend.explicit)
    func theConfigSpaceFeedsTheCapabilityWalk(_ backend: Backend) throws {
        let (machine, _, edu) = try MockMachine.opening(Devices.edu(), on: backend)
        defer { edu.close() }
        let eduBytes = try edu.readConfigSpace()
        #expect(eduBytes.count == 256)
        let eduCaps = Capabilities(walking: try ConfigSpace(bytes: eduBytes))
        #expect(eduCaps.problems.isEmpty)
        let msiAt = try #require(eduCaps.first(.msi)).offset
        let msi = try MSICapability(try ConfigSpace(bytes: eduBytes), at: msiAt)
        #expect(msi.multipleMessageCapable == 1 && msi.is64Bit)
        #expect(eduCaps.first(.msix) == nil)

        let other = pciAddress("0000:02:00.0")
        let nvmeLike = try machine.open(Devices.memory(msix: 8), on: backend, at: other)
        defer { nvmeLike.close() }
        let bytes = try nvmeLike.readConfigSpace()
        #expect(bytes.count == 4096)
        let config = try ConfigSpace(bytes: bytes)
        let caps = Capabilities(walking: config)
        #expect(caps.first(.pciExpress) != nil)
        let msix = try MSIXCapability(config, at: try #require(caps.first(.msix)).offset)
        #expect(msix.tableSize == 8)
        #expect(msix.table.bar == 0 && msix.table.offset == 0x2000)
        #expect(msix.pendingBitArray.bar == 0 && msix.pendingBitArray.offset == 0x3000)
    }

    @Test(arguments: Backend.explicit)
    func aLayoutLargerThanItsRegionIsRefused(_ backend: Backend) throws {
        let (_, _, device) = try MockMachine.opening(Devices.memory(barSize: 0x4000), on: backend)
        defer { device.close() }
        let bar = try device.bar(0)
        #expect(throws: VFIOError.regionTooSmall(device.address, index: 0, size: 0x4000, needed: 0x8000)) {
            _ = try bar.mmio(OversizedRegisters.self)
        }
        #expect(throws: VFIOError.regionTooSmall(device.address, index: 0, size: 0x4000, needed: 0x4002)) {
            try bar.read(UInt32.self, at: 0x3ffe)
        }
        #expect(throws: VFIOError.regionTooSmall(device.address, index: 0, size: 0x4000, needed: 0x4008)) {
            try bar.write(UInt64(1), at: 0x4000)
        }
        #expect(throws: VFIOError.self) { try bar.read(UInt32.self, at: -4) }
    }

    @Test(arguments: Backend.explicit)
    func regionsTheDeviceLacksAreNoSuchRegion(_ backend: Backend) throws {
        let (_, _, device) = try MockMachine.opening(Devices.edu(), on: backend)
        defer { device.close() }
        let a = MockMachine.primary
        #expect(throws: VFIOError.noSuchRegion(index: 1, a)) { try device.bar(1) }
        #expect(throws: VFIOError.noSuchRegion(index: 5, a)) { try device.bar(5) }
        #expect(throws: VFIOError.noSuchRegion(index: 6, a)) { try device.bar(6) }
        #expect(throws: VFIOError.noSuchRegion(index: -1, a)) { try device.bar(-1) }
        #expect(throws: VFIOError.noSuchRegion(index: 42, a)) { try device.region(42) }
        #expect(throws: VFIOError.noSuchRegion(index: 6, a)) { try device.regionInfo(6) }  // no ROM
    }

    @Test func aRegionIsOpenedOnceAndSharedAfterwards() throws {
        let (machine, _, device) = try MockMachine.opening(Devices.memory(), on: .legacy)
        defer { device.close() }
        let filesBefore = machine.kernel.openFileCount
        let first = try device.bar(0)
        let second = try device.region(0)
        #expect(first === second)
        #expect(first.pointer(covering: 0..<8) == second.pointer(covering: 0..<8))
        #expect(machine.kernel.openFileCount == filesBefore)
    }
}
