#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import SystemPackage
import Testing
@testable import VFIOMock

private func regionInfo(_ s: LegacySetup, _ index: Int, argsz: Int = 32) throws(Errno) -> (info: vfio_region_info, caps: [UInt8]) {
    let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: max(argsz, 32), alignment: 8)
    defer { raw.deallocate() }
    raw.initializeMemory(as: UInt8.self, repeating: 0)
    raw.storeBytes(of: UInt32(argsz), toByteOffset: 0, as: UInt32.self)
    raw.storeBytes(of: UInt32(index), toByteOffset: 8, as: UInt32.self)
    try ioctl(s.kernel, s.device, CVFIO_DEVICE_GET_REGION_INFO, buffer: raw)
    return (raw.load(as: vfio_region_info.self), Array(raw[32...]))
}

@Suite struct RegionTests {
    @Test func deviceAndIRQInfo() throws {
        let s = try LegacySetup(memoryDevice(msix: 8, msi: 4))
        var info = vfio_device_info()
        info.argsz = UInt32(MemoryLayout<vfio_device_info>.size)
        try ioctl(s.kernel, s.device, CVFIO_DEVICE_GET_INFO, &info)
        #expect(info.flags == UInt32(VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET))
        #expect(info.num_regions == 9 && info.num_irqs == 5)
        func irq(_ index: Int) throws(Errno) -> vfio_irq_info {
            var i = vfio_irq_info(argsz: 16, flags: 0, index: UInt32(index), count: 0)
            try ioctl(s.kernel, s.device, CVFIO_DEVICE_GET_IRQ_INFO, &i)
            return i
        }
        let intx = try irq(VFIO_PCI_INTX_IRQ_INDEX)
        #expect(intx.count == 1 && intx.flags == UInt32(VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED))
        let msi = try irq(VFIO_PCI_MSI_IRQ_INDEX)
        #expect(msi.count == 4 && msi.flags == UInt32(VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE))
        let msix = try irq(VFIO_PCI_MSIX_IRQ_INDEX)
        #expect(msix.count == 8 && msix.flags == UInt32(VFIO_IRQ_INFO_EVENTFD))
        #expect(try irq(VFIO_PCI_ERR_IRQ_INDEX).count == 1)
        #expect(try irq(VFIO_PCI_REQ_IRQ_INDEX).flags == UInt32(VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE))
        #expect(errno { try irq(5) } == .invalidArgument)
    }

    @Test func noresizeAndConventionalPCI() throws {
        var config = MockKernel.Configuration()
        config.dynamicMSIX = false
        var o = MemoryBARDevice.Options()
        o.msixVectors = 2
        o.isPCIExpress = false
        let s = try LegacySetup(MemoryBARDevice(options: o), configuration: config)
        var i = vfio_irq_info(argsz: 16, flags: 0, index: UInt32(VFIO_PCI_MSIX_IRQ_INDEX), count: 0)
        try ioctl(s.kernel, s.device, CVFIO_DEVICE_GET_IRQ_INFO, &i)
        #expect(i.flags & UInt32(VFIO_IRQ_INFO_NORESIZE) != 0)
        i.index = UInt32(VFIO_PCI_ERR_IRQ_INDEX)
        #expect(errno { try ioctl(s.kernel, s.device, CVFIO_DEVICE_GET_IRQ_INFO, &i) } == .invalidArgument)
    }

    @Test func regionInfoAndCapabilityProtocol() throws {
        let s = try LegacySetup(memoryDevice(msix: 16))
        let config = try regionInfo(s, VFIO_PCI_CONFIG_REGION_INDEX).info
        #expect(
            config.size == 4096 && config.offset == UInt64(7) << 40
                && config.flags == UInt32(VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE))
        // Too small for the capability chain: argsz grows, FLAG_CAPS is set, cap_offset is 0.
        let small = try regionInfo(s, VFIO_PCI_BAR0_REGION_INDEX)
        #expect(small.info.argsz == 40 && small.info.cap_offset == 0)
        #expect(
            small.info.flags
                == UInt32(
                    VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP | VFIO_REGION_INFO_FLAG_CAPS))
        #expect(small.info.offset == 0 && small.info.size == 65536)
        let full = try regionInfo(s, VFIO_PCI_BAR0_REGION_INDEX, argsz: 40)
        #expect(full.info.cap_offset == 32)
        #expect(full.caps[0] == UInt8(VFIO_REGION_INFO_CAP_MSIX_MAPPABLE) && full.caps[4] == 0)
        let bar1 = try regionInfo(s, VFIO_PCI_BAR1_REGION_INDEX).info
        #expect(bar1.size == 0 && bar1.flags == 0 && bar1.offset == UInt64(1) << 40)
        #expect(try regionInfo(s, VFIO_PCI_BAR2_REGION_INDEX).info.offset == UInt64(2) << 40)
        #expect(errno { try regionInfo(s, VFIO_PCI_VGA_REGION_INDEX) } == .invalidArgument)
        #expect(errno { try regionInfo(s, 9) } == .invalidArgument)
        #expect(errno { try regionInfo(s, 0, argsz: 16) } == .invalidArgument)
    }

    @Test func sparseMMapAroundTheMSIXTable() throws {
        var config = MockKernel.Configuration()
        config.msixTableMapping = .sparseAroundTable
        let s = try LegacySetup(memoryDevice(msix: 16), configuration: config)
        let full = try regionInfo(s, VFIO_PCI_BAR0_REGION_INDEX, argsz: 32 + 48)
        #expect(full.info.cap_offset == 32)
        let caps = full.caps.withUnsafeBytes { Array($0.bindMemory(to: UInt32.self)) }
        #expect(caps[0] & 0xffff == UInt32(VFIO_REGION_INFO_CAP_SPARSE_MMAP) && caps[2] == 2)
        let areas = full.caps.withUnsafeBytes { Array($0.bindMemory(to: UInt64.self)) }
        #expect(Array(areas[2...5]) == [0, 0x2000, 0x3000, 0xd000])
        #expect(
            errno { try s.kernel.mmap(length: 4096, protection: PROT_READ, flags: MAP_SHARED, fd: s.device, offset: 0x2000) }
                == .invalidArgument)
        let p = try s.kernel.mmap(length: 0x2000, protection: PROT_READ | PROT_WRITE, flags: MAP_SHARED, fd: s.device, offset: 0)
        try s.kernel.munmap(p, length: 0x2000)
    }

    @Test func mmapSharesBytesWithTheDevice() throws {
        let device = MemoryBARDevice()
        let s = try LegacySetup(device)
        let p = try s.kernel.mmap(length: 65536, protection: PROT_READ | PROT_WRITE, flags: MAP_SHARED, fd: s.device, offset: 0)
        p.storeBytes(of: UInt32(0xabcd_ef01), toByteOffset: 0x100, as: UInt32.self)
        let resets = device.resetCount
        _ = try s.kernel.ioctl(s.device, UInt(CVFIO_DEVICE_RESET), 0)
        #expect(device.resetCount == resets + 1)
        let seen = try #require(device.bus?.barMemory(0)).bytes
        #expect(seen.load(fromByteOffset: 0x100, as: UInt32.self) == 0xabcd_ef01)
        seen.storeBytes(of: UInt32(0x5555_aaaa), toByteOffset: 0x200, as: UInt32.self)
        #expect(p.load(fromByteOffset: 0x200, as: UInt32.self) == 0x5555_aaaa)
        // pread of a mappable BAR reads the same memory.
        #expect(try s.pread(0, offset: 0x100, width: 4) == 0xabcd_ef01)
        // Mappings must be shared, inside the BAR, and of a mappable BAR.
        #expect(
            errno { try s.kernel.mmap(length: 4096, protection: PROT_READ, flags: MAP_PRIVATE, fd: s.device, offset: 0) }
                == .invalidArgument)
        #expect(
            errno { try s.kernel.mmap(length: 8192, protection: PROT_READ, flags: MAP_SHARED, fd: s.device, offset: 61440) }
                == .invalidArgument)
        #expect(
            errno {
                try s.kernel.mmap(
                    length: 4096, protection: PROT_READ, flags: MAP_SHARED, fd: s.device, offset: Int64(VFIO_PCI_CONFIG_REGION_INDEX) << 40)
            } == .invalidArgument)
        try s.kernel.munmap(p, length: 65536)
    }

    @Test func trappedBARAndMSIXTableHiding() throws {
        let s = try LegacySetup(memoryDevice(msix: 4, trappedTable: true))
        #expect(
            try regionInfo(s, VFIO_PCI_BAR4_REGION_INDEX).info.flags == UInt32(VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE))
        #expect(
            errno { try s.kernel.mmap(length: 4096, protection: PROT_READ, flags: MAP_SHARED, fd: s.device, offset: 4 << 40) }
                == .invalidArgument)
        // The table reads as all ones through read/write.
        #expect(try s.pread(4, offset: 0, width: 4) == 0xffff_ffff)
        #expect(try s.pread(4, offset: 8, width: 8) == ~0)
        #expect(errno { try s.pread(4, offset: 16384, width: 4) } == .invalidArgument)
        // Memory decode off: BAR access is EIO.
        try s.pwrite(VFIO_PCI_CONFIG_REGION_INDEX, offset: 4, width: 2, value: 0)
        #expect(errno { try s.pread(0, offset: 0, width: 4) } == .ioError)
    }

    @Test func pcieFunctionLevelResetThroughDeviceControl() throws {
        let device = MemoryBARDevice()
        let s = try LegacySetup(device)
        let resets = device.resetCount
        let devctl = 0x40 + 8
        let before = try s.pread(VFIO_PCI_CONFIG_REGION_INDEX, offset: devctl, width: 2)
        try s.pwrite(VFIO_PCI_CONFIG_REGION_INDEX, offset: devctl, width: 2, value: before | 0x8000)
        #expect(device.resetCount == resets + 1)
        #expect(try s.pread(VFIO_PCI_CONFIG_REGION_INDEX, offset: devctl, width: 2) & 0x8000 == 0)
    }

    @Test func readAndWriteUseTheFilePosition() throws {
        let s = try LegacySetup(EduDevice())
        var id: UInt32 = 0
        // The position starts at 0: region 0 (BAR0), offset 0, the ID register.
        #expect(try withUnsafeMutableBytes(of: &id) { b in try s.kernel.read(s.device, into: b) } == 4)
        #expect(id == 0x0100_00ed)
        // It advanced to 0x04, the liveness register (initially 0).
        #expect(try withUnsafeMutableBytes(of: &id) { b in try s.kernel.read(s.device, into: b) } == 4)
        #expect(id == 0)
    }

    @Test func configSpaceVirtualization() throws {
        let s = try LegacySetup(EduDevice())
        let a = address("0000:01:00.0")
        #expect(try s.pread(VFIO_PCI_CONFIG_REGION_INDEX, offset: 0, width: 4) == 0x11e8_1234)
        #expect(try s.pread(VFIO_PCI_CONFIG_REGION_INDEX, offset: 8, width: 4) == 0x00ff_0010)
        // vfio-pci leaves bus mastering off and memory decode on.
        let command = try s.pread(VFIO_PCI_CONFIG_REGION_INDEX, offset: 4, width: 2)
        #expect(command & 0x4 == 0 && command & 0x2 != 0)
        // BAR sizing works on the virtual register and never reaches the device.
        let physicalBAR = try #require(s.kernel.physicalConfig(of: a)).withUnsafeBytes { $0.load(fromByteOffset: 0x10, as: UInt32.self) }
        try s.pwrite(VFIO_PCI_CONFIG_REGION_INDEX, offset: 0x10, width: 4, value: 0xffff_ffff)
        #expect(try s.pread(VFIO_PCI_CONFIG_REGION_INDEX, offset: 0x10, width: 4) == 0xfff0_0000)
        #expect(
            try #require(s.kernel.physicalConfig(of: a)).withUnsafeBytes { $0.load(fromByteOffset: 0x10, as: UInt32.self) } == physicalBAR)
        // Command writes pass through; INTx-disable is emulated, not written.
        try s.pwrite(VFIO_PCI_CONFIG_REGION_INDEX, offset: 4, width: 2, value: 0x0406)
        #expect(s.kernel.interruptState(of: a)?.command == 0x0406)
        #expect(try s.pread(VFIO_PCI_CONFIG_REGION_INDEX, offset: 4, width: 2) == 0x0406)
        try s.pwrite(VFIO_PCI_CONFIG_REGION_INDEX, offset: 4, width: 2, value: 0x0006)
        #expect(s.kernel.interruptState(of: a)?.command == 0x0006)
        // IDs are read-only.
        try s.pwrite(VFIO_PCI_CONFIG_REGION_INDEX, offset: 0, width: 4, value: 0)
        #expect(try s.pread(VFIO_PCI_CONFIG_REGION_INDEX, offset: 0, width: 2) == 0x1234)
        // The MSI capability is at 0x40 with one 64-bit vector; past the end is EFAULT.
        #expect(try s.pread(VFIO_PCI_CONFIG_REGION_INDEX, offset: 0x34, width: 1) == 0x40)
        #expect(try s.pread(VFIO_PCI_CONFIG_REGION_INDEX, offset: 0x40, width: 4) == 0x0080_0005)
        #expect(errno { try s.pread(VFIO_PCI_CONFIG_REGION_INDEX, offset: 256, width: 4) } == .badAddress)
    }
}
