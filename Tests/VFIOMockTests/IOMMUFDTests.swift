#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import SystemPackage
import Testing
@testable import VFIOMock

/// A kernel with one device and its cdev and iommufd open, not yet bound.
private struct CdevSetup {
    let kernel = MockKernel()
    let device: FileDescriptor
    let iommufd: FileDescriptor
    let memoryBAR = MemoryBARDevice()

    init() throws {
        try kernel.plug(memoryBAR, at: address("0000:05:00.0"), iommuGroup: 11)
        #expect(try kernel.listDirectory("/sys/bus/pci/devices/0000:05:00.0/vfio-dev") == ["vfio0"])
        device = try kernel.open("/dev/vfio/devices/vfio0", O_RDWR)
        iommufd = try kernel.open("/dev/iommu", O_RDWR)
    }

    func bind() throws(Errno) -> UInt32 {
        var bind = vfio_device_bind_iommufd(argsz: 16, flags: 0, iommufd: iommufd.rawValue, out_devid: 0)
        try ioctl(kernel, device, CVFIO_DEVICE_BIND_IOMMUFD, &bind)
        return bind.out_devid
    }

    func allocIOAS() throws(Errno) -> UInt32 {
        var alloc = iommu_ioas_alloc(size: 12, flags: 0, out_ioas_id: 0)
        try ioctl(kernel, iommufd, CVFIO_IOMMUFD_IOAS_ALLOC, &alloc)
        return alloc.out_ioas_id
    }

    func attach(_ pt: UInt32) throws(Errno) -> UInt32 {
        var attach = vfio_device_attach_iommufd_pt(argsz: 12, flags: 0, pt_id: pt)
        try ioctl(kernel, device, CVFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach)
        return attach.pt_id
    }

    func ranges(_ ioas: UInt32, capacity: Int) throws(Errno) -> (count: UInt32, alignment: UInt64, ranges: [IOVARange]) {
        var out = [iommu_iova_range](repeating: iommu_iova_range(start: 0, last: 0), count: max(capacity, 1))
        var cmd = iommu_ioas_iova_ranges(
            size: 32, ioas_id: ioas, num_iovas: UInt32(capacity), __reserved: 0,
            allowed_iovas: 0, out_iova_alignment: 0)
        let result = out.withUnsafeMutableBufferPointer { p -> Errno? in
            cmd.allowed_iovas = UInt64(UInt(bitPattern: p.baseAddress))
            return errno { try ioctl(kernel, iommufd, CVFIO_IOMMUFD_IOAS_IOVA_RANGES, &cmd) }
        }
        if let result { throw result }
        return (cmd.num_iovas, cmd.out_iova_alignment, out.prefix(capacity).map { IOVARange(first: $0.start, last: $0.last) })
    }

    func map(_ ioas: UInt32, vaddr: UnsafeMutableRawPointer, length: UInt64, iova: UInt64?) throws(Errno) -> UInt64 {
        var flags = IOMMU_IOAS_MAP_READABLE.rawValue | IOMMU_IOAS_MAP_WRITEABLE.rawValue
        if iova != nil { flags |= IOMMU_IOAS_MAP_FIXED_IOVA.rawValue }
        var cmd = iommu_ioas_map(
            size: 40, flags: flags, ioas_id: ioas, __reserved: 0,
            user_va: UInt64(UInt(bitPattern: vaddr)), length: length, iova: iova ?? 0)
        try ioctl(kernel, iommufd, CVFIO_IOMMUFD_IOAS_MAP, &cmd)
        return cmd.iova
    }

    func unmap(_ ioas: UInt32, iova: UInt64, length: UInt64) throws(Errno) -> UInt64 {
        var cmd = iommu_ioas_unmap(size: 24, ioas_id: ioas, iova: iova, length: length)
        try ioctl(kernel, iommufd, CVFIO_IOMMUFD_IOAS_UNMAP, &cmd)
        return cmd.length
    }

    func destroy(_ id: UInt32) throws(Errno) {
        var cmd = iommu_destroy(size: 8, id: id)
        try ioctl(kernel, iommufd, CVFIO_IOMMUFD_DESTROY, &cmd)
    }
}

@Suite struct IOMMUFDTests {
    @Test func deviceIoctlsNeedBind() throws {
        let s = try CdevSetup()
        var info = vfio_device_info()
        info.argsz = UInt32(MemoryLayout<vfio_device_info>.size)
        #expect(errno { try ioctl(s.kernel, s.device, CVFIO_DEVICE_GET_INFO, &info) } == .invalidArgument)
        #expect(errno { try s.attach(1) } == .invalidArgument)
        var bad = vfio_device_bind_iommufd(argsz: 16, flags: 1, iommufd: s.iommufd.rawValue, out_devid: 0)
        #expect(errno { try ioctl(s.kernel, s.device, CVFIO_DEVICE_BIND_IOMMUFD, &bad) } == .invalidArgument)
        let container = try s.kernel.open("/dev/vfio/vfio", O_RDWR)
        bad = vfio_device_bind_iommufd(argsz: 16, flags: 0, iommufd: container.rawValue, out_devid: 0)
        #expect(errno { try ioctl(s.kernel, s.device, CVFIO_DEVICE_BIND_IOMMUFD, &bad) } == .badFileDescriptorState)
        let devid = try s.bind()
        #expect(devid == 1)
        #expect(errno { try s.bind() } == .invalidArgument)
        try ioctl(s.kernel, s.device, CVFIO_DEVICE_GET_INFO, &info)
        #expect(info.num_regions == UInt32(VFIO_PCI_NUM_REGIONS))
        // A second cdev open cannot bind while the first is bound.
        let second = try s.kernel.open("/dev/vfio/devices/vfio0", O_RDWR)
        var bind2 = vfio_device_bind_iommufd(argsz: 16, flags: 0, iommufd: s.iommufd.rawValue, out_devid: 0)
        #expect(errno { try ioctl(s.kernel, second, CVFIO_DEVICE_BIND_IOMMUFD, &bind2) } == .invalidArgument)
        try s.kernel.close(second)
        try s.kernel.close(container)
    }

    @Test func cdevAndGroupExcludeEachOther() throws {
        let s = try CdevSetup()
        let group = try s.kernel.open("/dev/vfio/11", O_RDWR)
        #expect(errno { try s.bind() } == .resourceBusy)
        try s.kernel.close(group)
        _ = try s.bind()
        #expect(errno { try s.kernel.open("/dev/vfio/11", O_RDWR) } == .resourceBusy)
        try s.kernel.close(s.device)
        let again = try s.kernel.open("/dev/vfio/11", O_RDWR)
        try s.kernel.close(again)
    }

    @Test func fullSequenceWithRangesMapAndDMA() throws {
        let s = try CdevSetup()
        let devid = try s.bind()
        let ioas = try s.allocIOAS()
        #expect(ioas == 2)
        // Before any device is attached, every IOVA is usable and alignment is one byte.
        let before = try s.ranges(ioas, capacity: 4)
        #expect(before.count == 1 && before.alignment == 1)
        #expect(before.ranges.first == IOVARange(first: 0, last: .max))
        let hwpt = try s.attach(ioas)
        #expect(hwpt != ioas && hwpt != devid)
        // The EMSGSIZE protocol: too small an array still reports the count.
        #expect(errno { try s.ranges(ioas, capacity: 0) } == .messageTooLong)
        #expect(errno { try s.ranges(ioas, capacity: 1) } == .messageTooLong)
        let after = try s.ranges(ioas, capacity: 2)
        #expect(after.count == 2 && after.alignment == 4096)
        #expect(after.ranges == IOVARange.x86Default)

        let buf = try s.kernel.mmap(
            length: 3 * 4096, protection: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS, fd: nil, offset: 0)
        #expect(try s.map(ioas, vaddr: buf, length: 4096, iova: 0x10000) == 0x10000)
        #expect(errno { try s.map(ioas, vaddr: buf, length: 4096, iova: 0x10000) } == .fileExists)
        #expect(errno { try s.map(ioas, vaddr: buf, length: 4096, iova: 0x10800) } == .invalidArgument)
        #expect(errno { try s.map(ioas, vaddr: buf, length: 4096, iova: 0xfee0_0000) } == .invalidArgument)
        #expect(errno { try s.map(ioas, vaddr: buf, length: 100, iova: 0x20000) } == .invalidArgument)
        #expect(errno { try s.map(99, vaddr: buf, length: 4096, iova: 0x20000) } == .noSuchFileOrDirectory)
        let chosen = try s.map(ioas, vaddr: buf + 4096, length: 8192, iova: nil)
        #expect(chosen != 0 && chosen % 4096 == 0 && chosen != 0x10000)

        try regionWrite(s.kernel, s.device, VFIO_PCI_CONFIG_REGION_INDEX, offset: 4, width: 2, value: 0x6)
        let bus = try #require(s.memoryBAR.bus)
        let value: UInt64 = 0x1122_3344_5566_7788
        #expect(withUnsafeBytes(of: value) { bus.dmaWrite(iova: chosen + 4096, from: $0) })
        #expect(buf.load(fromByteOffset: 8192, as: UInt64.self) == value)
        #expect(!withUnsafeBytes(of: value) { bus.dmaWrite(iova: 0x90000, from: $0) })
        #expect(s.kernel.dmaFaults.last?.reason == .unmapped)

        // Unmap must cover whole areas; an empty range is ENOENT.
        #expect(errno { try s.unmap(ioas, iova: chosen, length: 4096) } == .noSuchFileOrDirectory)
        #expect(errno { try s.unmap(ioas, iova: 0x40000000, length: 4096) } == .noSuchFileOrDirectory)
        #expect(errno { try s.unmap(ioas, iova: 0x1000, length: 0) } == .invalidArgument)
        #expect(try s.unmap(ioas, iova: chosen, length: 8192) == 8192)
        #expect(try s.unmap(ioas, iova: 0, length: .max) == 4096)

        // Objects in use cannot be destroyed; after detach the IOAS can.
        #expect(errno { try s.destroy(ioas) } == .resourceBusy)
        #expect(errno { try s.destroy(devid) } == .resourceBusy)
        #expect(errno { try s.destroy(77) } == .noSuchFileOrDirectory)
        var detach = vfio_device_detach_iommufd_pt(argsz: 8, flags: 0)
        try ioctl(s.kernel, s.device, CVFIO_DEVICE_DETACH_IOMMUFD_PT, &detach)
        #expect(errno { try s.destroy(hwpt) } == .noSuchFileOrDirectory)
        try s.destroy(ioas)
        #expect(errno { try s.ranges(ioas, capacity: 2) } == .noSuchFileOrDirectory)
        try s.kernel.close(s.device)
        try s.kernel.close(s.iommufd)
        #expect(s.kernel.openFileCount == 0)
    }

    @Test func ioctlSizeRules() throws {
        let s = try CdevSetup()
        var short = iommu_ioas_alloc(size: 8, flags: 0, out_ioas_id: 0)
        #expect(errno { try ioctl(s.kernel, s.iommufd, CVFIO_IOMMUFD_IOAS_ALLOC, &short) } == .invalidArgument)
        var flagged = iommu_ioas_alloc(size: 12, flags: 1, out_ioas_id: 0)
        #expect(errno { try ioctl(s.kernel, s.iommufd, CVFIO_IOMMUFD_IOAS_ALLOC, &flagged) } == .notSupported)
        // A larger struct is accepted only if the extra bytes are zero.
        var big: (iommu_ioas_alloc, UInt32) = (iommu_ioas_alloc(size: 16, flags: 0, out_ioas_id: 0), 1)
        #expect(errno { try ioctl(s.kernel, s.iommufd, CVFIO_IOMMUFD_IOAS_ALLOC, &big) } == .argListTooLong)
        big.1 = 0
        try ioctl(s.kernel, s.iommufd, CVFIO_IOMMUFD_IOAS_ALLOC, &big)
        #expect(big.0.out_ioas_id == 1)
    }
}

/// `iommufd_device_bind` claims the group's DMA ownership with the iommufd as owner
/// (`iommu_device_claim_dma_owner`): the functions of one group go to one iommufd or fail.
@Suite struct IOMMUFDGroupOwnershipTests {
    func bind(_ kernel: MockKernel, _ cdev: String, to iommufd: FileDescriptor) throws(Errno) {
        let device = try kernel.open(cdev, O_RDWR)
        var bind = vfio_device_bind_iommufd(argsz: 16, flags: 0, iommufd: iommufd.rawValue, out_devid: 0)
        try ioctl(kernel, device, CVFIO_DEVICE_BIND_IOMMUFD, &bind)
    }

    @Test func twoFunctionsOfOneGroupOnTwoIOMMUFDsAreRefusedWithEPERM() throws {
        let kernel = MockKernel()
        try kernel.plug(MemoryBARDevice(), at: address("0000:05:00.0"), iommuGroup: 11)
        try kernel.plug(MemoryBARDevice(), at: address("0000:05:00.1"), iommuGroup: 11)
        let first = try kernel.open("/dev/iommu", O_RDWR)
        let second = try kernel.open("/dev/iommu", O_RDWR)
        try bind(kernel, "/dev/vfio/devices/vfio0", to: first)
        #expect(errno { try bind(kernel, "/dev/vfio/devices/vfio1", to: second) } == .notPermitted)
        // The owner's own iommufd may take the group's other function.
        try bind(kernel, "/dev/vfio/devices/vfio1", to: first)
    }

    @Test func functionsOfTwoGroupsBindToTwoIOMMUFDs() throws {
        let kernel = MockKernel()
        try kernel.plug(MemoryBARDevice(), at: address("0000:05:00.0"), iommuGroup: 11)
        try kernel.plug(MemoryBARDevice(), at: address("0000:06:00.0"), iommuGroup: 12)
        try bind(kernel, "/dev/vfio/devices/vfio0", to: try kernel.open("/dev/iommu", O_RDWR))
        try bind(kernel, "/dev/vfio/devices/vfio1", to: try kernel.open("/dev/iommu", O_RDWR))
    }
}
