#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import SystemPackage
import Testing
@testable import VFIOMock

private func fastEdu(_ configure: (inout EduDevice.Options) -> Void = { _ in }) -> EduDevice {
    var o = EduDevice.Options()
    o.dmaDelay = .zero
    configure(&o)
    return EduDevice(options: o)
}

private func waitUntil(_ condition: () throws -> Bool) rethrows -> Bool {
    for _ in 0..<2000 {
        if try condition() { return true }
        usleep(1000)
    }
    return false
}

@Suite struct EduDeviceTests {
    @Test func identityLivenessAndAccessSizes() throws {
        let s = try LegacySetup(fastEdu())
        #expect(try s.pread(0, offset: 0x00, width: 4) == 0x0100_00ed)
        try s.pwrite(0, offset: 0x04, width: 4, value: 0x1234_5678)
        #expect(try s.pread(0, offset: 0x04, width: 4) == 0xedcb_a987)
        // Registers below 0x80 take 32-bit accesses only.
        #expect(try s.pread(0, offset: 0x00, width: 2) == 0xffff)
        #expect(try s.pread(0, offset: 0x00, width: 8) == ~0)
        try s.pwrite(0, offset: 0x04, width: 2, value: 0)
        #expect(try s.pread(0, offset: 0x04, width: 4) == 0xedcb_a987)
        #expect(try s.pread(0, offset: 0x1000, width: 4) == 0xffff_ffff)
        // The DMA registers take 64-bit accesses.
        try s.pwrite(0, offset: 0x80, width: 8, value: 0x1_2345_6000)
        #expect(try s.pread(0, offset: 0x80, width: 8) == 0x1_2345_6000)
    }

    @Test func factorialRaisesMSI() throws {
        let s = try LegacySetup(fastEdu())
        let e = try s.wire(index: VFIO_PCI_MSI_IRQ_INDEX, count: 1)[0]
        try s.pwrite(0, offset: 0x20, width: 4, value: 0x80)
        try s.pwrite(0, offset: 0x08, width: 4, value: 10)
        #expect(waitEvent(e) == 1)
        #expect(try s.pread(0, offset: 0x08, width: 4) == 3_628_800)
        #expect(try s.pread(0, offset: 0x20, width: 4) == 0x80)
        #expect(try s.pread(0, offset: 0x24, width: 4) == 0x1)
        try s.pwrite(0, offset: 0x64, width: 4, value: 0x1)
        #expect(try s.pread(0, offset: 0x24, width: 4) == 0)
        // Raise by hand.
        try s.pwrite(0, offset: 0x60, width: 4, value: 0x40)
        #expect(waitEvent(e) == 1)
    }

    @Test func factorialRaisesINTxWithoutMSI() throws {
        let s = try LegacySetup(fastEdu())
        let a = address("0000:01:00.0")
        let e = try s.eventfd()
        try s.setIRQs(index: VFIO_PCI_INTX_IRQ_INDEX, fds: [e.rawValue])
        try s.pwrite(0, offset: 0x20, width: 4, value: 0x80)
        try s.pwrite(0, offset: 0x08, width: 4, value: 5)
        #expect(waitEvent(e) == 1)
        #expect(try s.pread(0, offset: 0x08, width: 4) == 120)
        // Acknowledge lowers the line; unmask then leaves INTx unmasked.
        try s.pwrite(0, offset: 0x64, width: 4, value: 0x1)
        try setIRQs(
            s.kernel, s.device, index: VFIO_PCI_INTX_IRQ_INDEX, start: 0, count: 1,
            flags: UInt32(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK))
        #expect(s.kernel.interruptState(of: a)?.intxMasked == false)
        #expect(waitEvent(e, milliseconds: 10) == 0)
    }

    @Test func dmaRoundTripThroughTheIOMMU() throws {
        let s = try LegacySetup(fastEdu())
        let e = try s.wire(index: VFIO_PCI_MSI_IRQ_INDEX, count: 1)[0]
        let buf = try s.buffer(8192)
        for i in 0..<256 { buf.storeBytes(of: UInt8(i), toByteOffset: i, as: UInt8.self) }
        try s.mapDMA(vaddr: buf, iova: 0x100000, size: 8192)
        // RAM -> device buffer, then device buffer -> RAM at another IOVA.
        try startDMA(s, from: 0x100000, to: 0x40000, count: 256, command: 0x1 | 0x4)
        #expect(waitEvent(e) == 1)
        #expect(try s.pread(0, offset: 0x98, width: 8) & 1 == 0)
        #expect(try s.pread(0, offset: 0x24, width: 4) == 0x100)
        try s.pwrite(0, offset: 0x64, width: 4, value: 0x100)
        try startDMA(s, from: 0x40000, to: 0x101000, command: 0x1 | 0x2 | 0x4)
        #expect(waitEvent(e) == 1)
        #expect(memcmp(buf, buf + 4096, 256) == 0)
        #expect(s.kernel.dmaFaults.isEmpty)
    }

    @Test func dmaMaskClampsAddresses() throws {
        let s = try LegacySetup(fastEdu())
        try s.enableBusMaster()
        let buf = try s.buffer(4096)
        try s.mapDMA(vaddr: buf, iova: 0x200000, size: 4096)
        // 0x1_0020_0000 is clamped to 0x20_0000 by the 28-bit mask.
        try startDMA(s, from: 0x40000, to: 0x1_0020_0000, count: 8, command: 0x3)
        #expect(try waitUntil { try s.pread(0, offset: 0x98, width: 8) & 1 == 0 })
        #expect(s.kernel.dmaFaults.isEmpty)
        // An IOVA above 2^28 cannot be reached at all: it lands below and faults if unmapped.
        try s.mapDMA(vaddr: buf, iova: 0x1000_0000, size: 4096)
        try startDMA(s, from: 0x40000, to: 0x1000_0000, command: 0x3)
        #expect(try waitUntil { try s.pread(0, offset: 0x98, width: 8) & 1 == 0 })
        #expect(s.kernel.dmaFaults.first?.iova == 0)
    }

    @Test func busMasterOffMeansNoDMA() throws {
        let s = try LegacySetup(fastEdu())
        let buf = try s.buffer(4096)
        buf.storeBytes(of: UInt64(0x0102_0304_0506_0708), as: UInt64.self)
        try s.mapDMA(vaddr: buf, iova: 0x100000, size: 4096)
        try startDMA(s, from: 0x100000, to: 0x40000, count: 8, command: 0x1)
        #expect(try waitUntil { try s.pread(0, offset: 0x98, width: 8) & 1 == 0 })
        #expect(s.kernel.dmaFaults.map(\.reason) == [.busMasterDisabled])
    }

    @Test func resetClearsDeviceStateButKeepsConfig() throws {
        let s = try LegacySetup(fastEdu())
        try s.enableBusMaster()
        try s.pwrite(0, offset: 0x04, width: 4, value: 0)
        #expect(try s.pread(0, offset: 0x04, width: 4) == 0xffff_ffff)
        _ = try s.kernel.ioctl(s.device, UInt(CVFIO_DEVICE_RESET), 0)
        #expect(try s.pread(0, offset: 0x04, width: 4) == 0)
        #expect(try s.pread(VFIO_PCI_CONFIG_REGION_INDEX, offset: 4, width: 2) == 0x6)
        // QEMU's edu on the root bus: no FLR, PM or bus reset, so no reset at all.
        let noReset = try LegacySetup(fastEdu(), at: address("0000:00:03.0"))
        #expect(errno { try noReset.kernel.ioctl(noReset.device, UInt(CVFIO_DEVICE_RESET), 0) } == .invalidArgument)
        // This header's vfio_device_info predates 6.12's trailing pad: argsz says what it has.
        var info = vfio_device_info()
        info.argsz = UInt32(MemoryLayout<vfio_device_info>.size)
        try ioctl(noReset.kernel, noReset.device, CVFIO_DEVICE_GET_INFO, &info)
        #expect(info.flags == UInt32(VFIO_DEVICE_FLAGS_PCI))
        #expect(info.argsz == 20 && info.cap_offset == 0)
    }

    @Test func closingTheDeviceResetsItAndStopsBusMastering() throws {
        let s = try LegacySetup(fastEdu())
        let a = address("0000:01:00.0")
        try s.enableBusMaster()
        try s.pwrite(0, offset: 0x04, width: 4, value: 0)
        let e = try s.eventfd()
        try s.setIRQs(index: VFIO_PCI_MSI_IRQ_INDEX, fds: [e.rawValue])
        try s.kernel.close(s.device)
        #expect(s.kernel.interruptState(of: a)?.kind == InterruptState.Kind.none)
        #expect(s.kernel.interruptState(of: a)!.command & 0x4 == 0)
        let name = a.description
        let d = FileDescriptor(
            rawValue: try name.withCString { try s.kernel.ioctl(s.group, UInt(CVFIO_GROUP_GET_DEVICE_FD), UInt(bitPattern: $0)) })
        #expect(try regionRead(s.kernel, d, 0, offset: 0x04, width: 4) == 0)
    }

    @Test func ramBAR() throws {
        let s = try LegacySetup(fastEdu { $0.ramBARSize = 1 << 20 })
        let p = try s.kernel.mmap(length: 1 << 20, protection: PROT_READ | PROT_WRITE, flags: MAP_SHARED, fd: s.device, offset: 2 << 40)
        p.storeBytes(of: UInt32(7), toByteOffset: 64, as: UInt32.self)
        #expect(try s.pread(2, offset: 64, width: 4) == 7)
        try s.kernel.munmap(p, length: 1 << 20)
    }

    /// Programs edu's DMA engine (source 0x80, destination 0x88, count 0x90, when given) and
    /// starts it with `command` (0x98: 1 start, 2 device to RAM, 4 interrupt when done).
    func startDMA(_ s: LegacySetup, from source: UInt64, to destination: UInt64, count: UInt64? = nil, command: UInt64) throws {
        try s.pwrite(0, offset: 0x80, width: 8, value: source)
        try s.pwrite(0, offset: 0x88, width: 8, value: destination)
        if let count { try s.pwrite(0, offset: 0x90, width: 8, value: count) }
        try s.pwrite(0, offset: 0x98, width: 8, value: command)
    }
}
