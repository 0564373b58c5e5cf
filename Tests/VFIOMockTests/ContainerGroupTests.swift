#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import SystemPackage
import Testing
@testable import VFIOMock

@Suite struct ContainerGroupTests {
    @Test func apiVersionAndExtensions() throws {
        let k = MockKernel()
        let c = try k.open("/dev/vfio/vfio", O_RDWR)
        #expect(try k.ioctl(c, UInt(CVFIO_GET_API_VERSION), 0) == VFIO_API_VERSION)
        #expect(try k.ioctl(c, UInt(CVFIO_CHECK_EXTENSION), UInt(VFIO_TYPE1_IOMMU)) == 1)
        #expect(try k.ioctl(c, UInt(CVFIO_CHECK_EXTENSION), UInt(VFIO_TYPE1v2_IOMMU)) == 1)
        #expect(try k.ioctl(c, UInt(CVFIO_CHECK_EXTENSION), UInt(VFIO_NOIOMMU_IOMMU)) == 0)
        #expect(try k.ioctl(c, UInt(CVFIO_CHECK_EXTENSION), UInt(VFIO_DMA_CC_IOMMU)) == 0)
        try k.close(c)
        #expect(k.openFileCount == 0)
    }

    @Test func orderRules() throws {
        let k = MockKernel()
        try k.plug(EduDevice(), at: address("0000:00:03.0"), iommuGroup: 3)
        let c = try k.open("/dev/vfio/vfio", O_RDWR)
        // No group: SET_IOMMU and every IOMMU ioctl are refused.
        #expect(errno { try k.ioctl(c, UInt(CVFIO_SET_IOMMU), UInt(VFIO_TYPE1v2_IOMMU)) } == .invalidArgument)
        var map = vfio_iommu_type1_dma_map(argsz: 32, flags: 3, vaddr: 0, iova: 0, size: 4096)
        #expect(errno { try ioctl(k, c, CVFIO_IOMMU_MAP_DMA, &map) } == .invalidArgument)
        let g = try k.open("/dev/vfio/3", O_RDWR)
        var status = vfio_group_status(argsz: 8, flags: 0)
        try ioctl(k, g, CVFIO_GROUP_GET_STATUS, &status)
        #expect(status.flags == UInt32(VFIO_GROUP_FLAGS_VIABLE))
        // No container yet: GET_DEVICE_FD is EINVAL.
        let name = "0000:00:03.0"
        #expect(
            errno { try name.withCString { try k.ioctl(g, UInt(CVFIO_GROUP_GET_DEVICE_FD), UInt(bitPattern: $0)) } } == .invalidArgument)
        var fd = c.rawValue
        try ioctl(k, g, CVFIO_GROUP_SET_CONTAINER, &fd)
        try ioctl(k, g, CVFIO_GROUP_GET_STATUS, &status)
        #expect(status.flags == UInt32(VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET))
        // Container set but no IOMMU: still EINVAL, and MAP_DMA too.
        #expect(
            errno { try name.withCString { try k.ioctl(g, UInt(CVFIO_GROUP_GET_DEVICE_FD), UInt(bitPattern: $0)) } } == .invalidArgument)
        #expect(errno { try ioctl(k, c, CVFIO_IOMMU_MAP_DMA, &map) } == .invalidArgument)
        #expect(errno { try k.ioctl(c, UInt(CVFIO_SET_IOMMU), UInt(VFIO_NOIOMMU_IOMMU)) } == .operationNotSupportedByDevice)
        #expect(try k.ioctl(c, UInt(CVFIO_SET_IOMMU), UInt(VFIO_TYPE1v2_IOMMU)) == 0)
        #expect(errno { try k.ioctl(c, UInt(CVFIO_SET_IOMMU), UInt(VFIO_TYPE1v2_IOMMU)) } == .invalidArgument)
        #expect(try k.ioctl(c, UInt(CVFIO_CHECK_EXTENSION), UInt(VFIO_DMA_CC_IOMMU)) == 1)
        #expect(
            errno { try "0000:00:04.0".withCString { try k.ioctl(g, UInt(CVFIO_GROUP_GET_DEVICE_FD), UInt(bitPattern: $0)) } }
                == .operationNotSupportedByDevice)
        let d = try name.withCString { try k.ioctl(g, UInt(CVFIO_GROUP_GET_DEVICE_FD), UInt(bitPattern: $0)) }
        #expect(d >= 0)
        // A second SET_CONTAINER is EINVAL; UNSET with a device open is EBUSY.
        #expect(errno { try ioctl(k, g, CVFIO_GROUP_SET_CONTAINER, &fd) } == .invalidArgument)
        #expect(errno { try k.ioctl(g, UInt(CVFIO_GROUP_UNSET_CONTAINER), 0) } == .resourceBusy)
        try k.close(FileDescriptor(rawValue: d))
        #expect(try k.ioctl(g, UInt(CVFIO_GROUP_UNSET_CONTAINER), 0) == 0)
        #expect(errno { try k.ioctl(g, UInt(CVFIO_GROUP_UNSET_CONTAINER), 0) } == .invalidArgument)
        // Detaching the last group released the IOMMU driver.
        #expect(errno { try ioctl(k, c, CVFIO_IOMMU_MAP_DMA, &map) } == .invalidArgument)
        try k.close(g)
        try k.close(c)
        #expect(k.openFileCount == 0)
    }

    @Test func groupOpensOnceAndStaysHeldByDevices() throws {
        let s = try LegacySetup(EduDevice())
        #expect(errno { try s.kernel.open("/dev/vfio/7", O_RDWR) } == .resourceBusy)
        try s.kernel.close(s.group)
        // The device fd still holds the group file.
        #expect(errno { try s.kernel.open("/dev/vfio/7", O_RDWR) } == .resourceBusy)
        try s.kernel.close(s.device)
        let again = try s.kernel.open("/dev/vfio/7", O_RDWR)
        try s.kernel.close(again)
        try s.kernel.close(s.container)
        #expect(s.kernel.openFileCount == 0)
    }

    @Test func nonViableGroup() throws {
        let k = MockKernel()
        try k.plug(EduDevice(), at: address("0000:02:00.0"), iommuGroup: 5)
        try k.plug(MemoryBARDevice(), at: address("0000:02:00.1"), iommuGroup: 5, driver: .kernel("snd_hda_intel"))
        let c = try k.open("/dev/vfio/vfio", O_RDWR)
        let g = try k.open("/dev/vfio/5", O_RDWR)
        var status = vfio_group_status(argsz: 8, flags: 0xff)
        try ioctl(k, g, CVFIO_GROUP_GET_STATUS, &status)
        #expect(status.flags == 0)
        var fd = c.rawValue
        #expect(errno { try ioctl(k, g, CVFIO_GROUP_SET_CONTAINER, &fd) } == .notPermitted)
        status.argsz = 4
        #expect(errno { try ioctl(k, g, CVFIO_GROUP_GET_STATUS, &status) } == .invalidArgument)
        // A stray fd is EBADFD, a closed one EBADF.
        let stray = try k.eventfd(initialValue: 0, flags: 0)
        fd = stray.rawValue
        #expect(errno { try ioctl(k, g, CVFIO_GROUP_SET_CONTAINER, &fd) } == .badFileDescriptorState)
        try k.close(stray)
        #expect(errno { try ioctl(k, g, CVFIO_GROUP_SET_CONTAINER, &fd) } == .badFileDescriptor)
        #expect(errno { try k.ioctl(g, 0x1234, 0) } == .inappropriateIOCTLForDevice)
    }

    @Test func groupNodesExistOnlyForVFIOGroups() throws {
        let k = MockKernel()
        try k.plug(MemoryBARDevice(), at: address("0000:03:00.0"), iommuGroup: 9, driver: .uioPCIGeneric)
        #expect(errno { try k.open("/dev/vfio/9", O_RDWR) } == .noSuchFileOrDirectory)
        #expect(errno { try k.open("/dev/vfio/noiommu-9", O_RDWR) } == .noSuchFileOrDirectory)
        #expect(errno { try k.open("/etc/passwd", O_RDONLY) } == .noSuchFileOrDirectory)
        var config = MockKernel.Configuration()
        config.legacyContainerAvailable = false
        #expect(errno { try MockKernel(configuration: config).open("/dev/vfio/vfio", O_RDWR) } == .noSuchFileOrDirectory)
    }

    @Test func noIOMMUMode() throws {
        var config = MockKernel.Configuration()
        config.noIOMMU = true
        let k = MockKernel(configuration: config)
        try k.plug(MemoryBARDevice(), at: address("0000:04:00.0"), iommuGroup: 0)
        #expect(errno { try k.open("/dev/vfio/0", O_RDWR) } == .noSuchFileOrDirectory)
        let c = try k.open("/dev/vfio/vfio", O_RDWR)
        #expect(try k.ioctl(c, UInt(CVFIO_CHECK_EXTENSION), UInt(VFIO_NOIOMMU_IOMMU)) == 1)
        let g = try k.open("/dev/vfio/noiommu-0", O_RDWR)
        var fd = c.rawValue
        try ioctl(k, g, CVFIO_GROUP_SET_CONTAINER, &fd)
        // With a no-IOMMU group attached only the no-IOMMU driver is offered.
        #expect(try k.ioctl(c, UInt(CVFIO_CHECK_EXTENSION), UInt(VFIO_TYPE1v2_IOMMU)) == 0)
        #expect(errno { try k.ioctl(c, UInt(CVFIO_SET_IOMMU), UInt(VFIO_TYPE1v2_IOMMU)) } == .operationNotSupportedByDevice)
        #expect(try k.ioctl(c, UInt(CVFIO_SET_IOMMU), UInt(VFIO_NOIOMMU_IOMMU)) == 0)
        var map = vfio_iommu_type1_dma_map(argsz: 32, flags: 3, vaddr: 0, iova: 0, size: 4096)
        #expect(errno { try ioctl(k, c, CVFIO_IOMMU_MAP_DMA, &map) } == .inappropriateIOCTLForDevice)
        let d = try "0000:04:00.0".withCString { try k.ioctl(g, UInt(CVFIO_GROUP_GET_DEVICE_FD), UInt(bitPattern: $0)) }
        #expect(d >= 0)
        #expect(try k.listDirectory("/dev/vfio").sorted() == ["devices", "noiommu-0", "vfio"])
    }
}
