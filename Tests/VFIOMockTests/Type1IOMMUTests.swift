#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import SystemPackage
import Testing
@testable import VFIOMock

@Suite struct Type1IOMMUTests {
    @Test func mapOverlapAndAlignment() throws {
        let s = try LegacySetup(MemoryBARDevice())
        let buf = try s.buffer(16384)
        try s.mapDMA(vaddr: buf, iova: 0x10000, size: 8192)
        #expect(errno { try s.mapDMA(vaddr: buf, iova: 0x11000, size: 4096) } == .fileExists)
        #expect(errno { try s.mapDMA(vaddr: buf, iova: 0xf000, size: 8192) } == .fileExists)
        #expect(errno { try s.mapDMA(vaddr: buf, iova: 0x20800, size: 4096) } == .invalidArgument)
        #expect(errno { try s.mapDMA(vaddr: buf, iova: 0x20000, size: 0) } == .invalidArgument)
        #expect(errno { try s.mapDMA(vaddr: buf + 1, iova: 0x20000, size: 4096) } == .invalidArgument)
        #expect(errno { try s.mapDMA(vaddr: buf, iova: 0x20000, size: 4096, flags: 0) } == .invalidArgument)
        #expect(errno { try s.mapDMA(vaddr: buf, iova: 0x20000, size: 4096, flags: 0x10) } == .invalidArgument)
        // The MSI window and beyond the 48-bit aperture are not IOVAs.
        #expect(errno { try s.mapDMA(vaddr: buf, iova: 0xfee0_0000, size: 4096) } == .invalidArgument)
        #expect(errno { try s.mapDMA(vaddr: buf, iova: 1 << 48, size: 4096) } == .invalidArgument)
        // Memory the process never mapped cannot be pinned.
        let stack = UnsafeMutableRawPointer(bitPattern: 0x7000_0000_0000)!
        #expect(errno { try s.mapDMA(vaddr: stack, iova: 0x40000, size: 4096) } == .badAddress)
        #expect(s.kernel.dmaMappings(of: address("0000:01:00.0")).map(\.iova) == [0x10000])
    }

    @Test func unmapFollowsTheV2Rules() throws {
        let s = try LegacySetup(MemoryBARDevice())
        let buf = try s.buffer(16384)
        try s.mapDMA(vaddr: buf, iova: 0x10000, size: 8192)
        try s.mapDMA(vaddr: buf, iova: 0x20000, size: 4096)
        // Bisecting a mapping at either end is EINVAL.
        #expect(errno { try s.unmapDMA(iova: 0x11000, size: 4096) } == .invalidArgument)
        #expect(errno { try s.unmapDMA(iova: 0x10000, size: 4096) } == .invalidArgument)
        #expect(errno { try s.unmapDMA(iova: 0x10000, size: 100) } == .invalidArgument)
        // Nothing mapped: success with size 0.
        #expect(try s.unmapDMA(iova: 0x50000, size: 4096) == 0)
        // A covering range removes whole mappings.
        #expect(try s.unmapDMA(iova: 0x10000, size: 0x20000) == 0x3000)
        try s.mapDMA(vaddr: buf, iova: 0x30000, size: 4096)
        #expect(errno { try s.unmapDMA(iova: 0x1000, size: 4096, flags: UInt32(VFIO_DMA_UNMAP_FLAG_ALL)) } == .invalidArgument)
        #expect(try s.unmapDMA(iova: 0, size: 0, flags: UInt32(VFIO_DMA_UNMAP_FLAG_ALL)) == 0x1000)
        #expect(s.kernel.dmaMappings(of: address("0000:01:00.0")).isEmpty)
    }

    @Test func entryLimit() throws {
        let s = try LegacySetup(MemoryBARDevice())
        let buf = try s.buffer(4096)
        for i in 0..<65535 { try s.mapDMA(vaddr: buf, iova: UInt64(i + 1) << 12, size: 4096) }
        #expect(errno { try s.mapDMA(vaddr: buf, iova: 0x1_0000_0000, size: 4096) } == .noSpace)
        #expect(try s.unmapDMA(iova: 0x1000, size: 4096) == 4096)
        try s.mapDMA(vaddr: buf, iova: 0x1_0000_0000, size: 4096)
    }

    @Test func memlockLimit() throws {
        var config = MockKernel.Configuration()
        config.memlockLimit = 8192
        let s = try LegacySetup(MemoryBARDevice(), configuration: config)
        let buf = try s.buffer(16384)
        try s.mapDMA(vaddr: buf, iova: 0x1000, size: 8192)
        #expect(errno { try s.mapDMA(vaddr: buf, iova: 0x10000, size: 4096) } == .noMemory)
    }

    @Test func infoCapabilitiesAndArgsz() throws {
        var config = MockKernel.Configuration()
        config.dmaEntryLimit = 100
        let s = try LegacySetup(MemoryBARDevice(), configuration: config)
        try s.mapDMA(vaddr: try s.buffer(), iova: 0x1000, size: 4096)
        var info = vfio_iommu_type1_info()
        info.argsz = UInt32(MemoryLayout<vfio_iommu_type1_info>.size)
        try ioctl(s.kernel, s.container, CVFIO_IOMMU_GET_INFO, &info)
        #expect(info.flags == UInt32(VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS))
        #expect(info.iova_pgsizes == 0x4020_1000)
        #expect(info.cap_offset == 0)
        let needed = Int(info.argsz)
        #expect(needed == 24 + 32 + 16 + 16 + 2 * 16)
        info.argsz = 8
        #expect(errno { try ioctl(s.kernel, s.container, CVFIO_IOMMU_GET_INFO, &info) } == .invalidArgument)

        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: needed, alignment: 8)
        defer { raw.deallocate() }
        raw.initializeMemory(as: UInt8.self, repeating: 0)
        raw.storeBytes(of: UInt32(needed), as: UInt32.self)
        try ioctl(s.kernel, s.container, CVFIO_IOMMU_GET_INFO, buffer: raw)
        var offset = Int(raw.load(fromByteOffset: 16, as: UInt32.self))
        #expect(offset == 24)
        var found: [UInt16: Int] = [:]
        while offset != 0 {
            found[raw.load(fromByteOffset: offset, as: UInt16.self)] = offset
            offset = Int(raw.load(fromByteOffset: offset + 4, as: UInt32.self))
        }
        #expect(
            Set(found.keys) == [
                UInt16(VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE), UInt16(VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL),
                UInt16(VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION),
            ])
        let avail = found[UInt16(VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL)]!
        #expect(raw.load(fromByteOffset: avail + 8, as: UInt32.self) == 99)
        let ranges = found[UInt16(VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE)]!
        #expect(raw.load(fromByteOffset: ranges + 8, as: UInt32.self) == 2)
        #expect(raw.load(fromByteOffset: ranges + 16, as: UInt64.self) == 0)
        #expect(raw.load(fromByteOffset: ranges + 24, as: UInt64.self) == 0xfedf_ffff)
        #expect(raw.load(fromByteOffset: ranges + 32, as: UInt64.self) == 0xfef0_0000)
        #expect(raw.load(fromByteOffset: ranges + 40, as: UInt64.self) == (1 << 48) - 1)
    }

    @Test func type1v1UnmapsFromTheStartOnly() throws {
        let k = MockKernel()
        try k.plug(MemoryBARDevice(), at: address("0000:01:00.0"), iommuGroup: 1)
        let c = try k.open("/dev/vfio/vfio", O_RDWR)
        let g = try k.open("/dev/vfio/1", O_RDWR)
        var fd = c.rawValue
        try ioctl(k, g, CVFIO_GROUP_SET_CONTAINER, &fd)
        _ = try k.ioctl(c, UInt(CVFIO_SET_IOMMU), UInt(VFIO_TYPE1_IOMMU))
        let buf = try k.mmap(length: 8192, protection: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS, fd: nil, offset: 0)
        var map = vfio_iommu_type1_dma_map(argsz: 32, flags: 3, vaddr: UInt64(UInt(bitPattern: buf)), iova: 0x10000, size: 8192)
        try ioctl(k, c, CVFIO_IOMMU_MAP_DMA, &map)
        var unmap = vfio_iommu_type1_dma_unmap()
        unmap.argsz = 24
        unmap.iova = 0x11000
        unmap.size = 4096
        try ioctl(k, c, CVFIO_IOMMU_UNMAP_DMA, &unmap)
        #expect(unmap.size == 0)
        unmap.iova = 0x10000
        unmap.size = 4096
        try ioctl(k, c, CVFIO_IOMMU_UNMAP_DMA, &unmap)
        #expect(unmap.size == 8192)
    }
}

@Suite struct DeviceDMATests {
    @Test func translationFaultsAndPermissions() throws {
        let device = MemoryBARDevice()
        let s = try LegacySetup(device)
        let bus = try #require(device.bus)
        let buf = try s.buffer(8192)
        try s.mapDMA(vaddr: buf, iova: 0x100000, size: 4096)
        try s.mapDMA(vaddr: buf + 4096, iova: 0x200000, size: 4096, flags: UInt32(VFIO_DMA_MAP_FLAG_READ))
        let a = address("0000:01:00.0")
        let word: [UInt8] = [1, 2, 3, 4]
        // Bus mastering is off after open: the DMA is refused.
        #expect(!word.withUnsafeBytes { bus.dmaWrite(iova: 0x100010, from: $0) })
        #expect(s.kernel.dmaFaults.last?.reason == .busMasterDisabled)
        try s.enableBusMaster()
        #expect(word.withUnsafeBytes { bus.dmaWrite(iova: 0x100010, from: $0) })
        #expect(buf.load(fromByteOffset: 0x10, as: UInt32.self) == 0x0403_0201)
        // Unmapped and read-only IOVAs fault and change nothing.
        #expect(!word.withUnsafeBytes { bus.dmaWrite(iova: 0x300000, from: $0) })
        #expect(!word.withUnsafeBytes { bus.dmaWrite(iova: 0x200000, from: $0) })
        #expect(!word.withUnsafeBytes { bus.dmaWrite(iova: 0x100ffe, from: $0) })
        #expect(buf.load(fromByteOffset: 4096, as: UInt32.self) == 0)
        let faults = s.kernel.dmaFaults.suffix(3)
        #expect(faults.map(\.reason) == [.unmapped, .permission, .unmapped])
        #expect(faults.map(\.iova) == [0x300000, 0x200000, 0x101000])
        #expect(faults.allSatisfy { $0.device == a && $0.isWrite })
        var out = [UInt8](repeating: 0, count: 4)
        #expect(out.withUnsafeMutableBytes { bus.dmaRead(iova: 0x100010, into: $0) })
        #expect(out == word)
        // After unmapping, the same IOVA faults.
        #expect(try s.unmapDMA(iova: 0x100000, size: 4096) == 4096)
        #expect(!out.withUnsafeMutableBytes { bus.dmaRead(iova: 0x100010, into: $0) })
        #expect(s.kernel.dmaFaults.last == DMAFault(device: a, iova: 0x100010, length: 4, isWrite: false, reason: .unmapped))
    }

    @Test func dmaIsBlockedUntilAnIOMMUDomainIsSet() throws {
        let k = MockKernel()
        let device = MemoryBARDevice()
        let a = address("0000:01:00.0")
        try k.plug(device, at: a, iommuGroup: 1)
        let config = try k.open("/sys/bus/pci/devices/0000:01:00.0/config", O_RDWR)
        var command: UInt16 = 0x6
        _ = try withUnsafeBytes(of: &command) { b in try k.pwrite(config, from: b, at: 4) }
        var word: UInt32 = 0
        #expect(!withUnsafeMutableBytes(of: &word) { device.bus!.dmaRead(iova: 0x1000, into: $0) })
        #expect(k.dmaFaults == [DMAFault(device: a, iova: 0x1000, length: 4, isWrite: false, reason: .blocked)])
        k.clearDMAFaults()
        #expect(k.dmaFaults.isEmpty)
        try k.close(config)
    }

    @Test func noIOMMUUsesPhysicalAddressesFromPagemap() throws {
        var config = MockKernel.Configuration()
        config.noIOMMU = true
        let device = MemoryBARDevice()
        let s = try LegacySetup(device, configuration: config)
        try s.enableBusMaster()
        let buf = try s.buffer(8192)
        let pagemap = try s.kernel.open("/proc/self/pagemap", O_RDONLY)
        var entries: (UInt64, UInt64) = (0, 0)
        let n = try withUnsafeMutableBytes(of: &entries) { b in
            try s.kernel.pread(pagemap, into: b, at: Int64(UInt(bitPattern: buf) / 4096 * 8))
        }
        #expect(n == 16)
        #expect(entries.0 >> 63 == 1 && entries.1 >> 63 == 1)
        let pfn0 = entries.0 & ((1 << 55) - 1), pfn1 = entries.1 & ((1 << 55) - 1)
        // 4 KiB pages are not physically contiguous.
        #expect(pfn1 != pfn0 + 1 && pfn0 != pfn1)
        #expect(s.kernel.physicalAddress(of: buf) == pfn0 << 12)
        let value: UInt32 = 0xfeed_beef
        #expect(withUnsafeBytes(of: value) { device.bus!.dmaWrite(iova: (pfn1 << 12) + 8, from: $0) })
        #expect(buf.load(fromByteOffset: 4096 + 8, as: UInt32.self) == value)
        #expect(!withUnsafeBytes(of: value) { device.bus!.dmaWrite(iova: 0x1234_5000, from: $0) })
        try s.kernel.munmap(buf, length: 8192)
        #expect(s.kernel.physicalAddress(of: buf) == nil)
        try s.kernel.close(pagemap)
    }
}
