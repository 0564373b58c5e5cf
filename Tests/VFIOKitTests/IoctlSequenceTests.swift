import CVFIO
import PCI
import Synchronization
import SystemPackage
import Testing
import VFIOMock
@testable import VFIOKit

@Suite struct IoctlSequenceTests {
    let address = try! PCIAddress(parsing: "0000:00:04.0")

    /// Opens the device, maps and unmaps one buffer, and closes, returning the ioctls made.
    private func sequence(_ backend: Backend, configuration: MockKernel.Configuration = .init()) throws -> [Int] {
        let ioctls = Mutex<[Int]>([])
        let recorder = InterposedKernel(MockKernel(configuration: configuration)) { call in
            if case .ioctl(let request) = call { ioctls.withLock { $0.append(Int(request)) } }
        }
        try recorder.kernel.plug(MemoryBARDevice(), at: address)
        let device = try PCIDevice.open(address, backend: backend, system: recorder)
        let buffer = try device.dma.allocate(4096)
        try buffer.free()
        device.close()
        // Region and IRQ info queries come and go with what a driver asks; the order of the
        // set-up and DMA calls is what the kernel constrains.
        let info = [CVFIO_DEVICE_GET_INFO, CVFIO_DEVICE_GET_REGION_INFO, CVFIO_DEVICE_GET_IRQ_INFO]
        return ioctls.withLock { $0 }.filter { !info.contains($0) }
    }

    /// The context allocates its IOAS once; each device then binds and attaches to it.
    @Test func iommufdAllocatesBindsAttachesReadsRangesThenMaps() throws {
        #expect(
            try sequence(.iommufd) == [
                CVFIO_IOMMUFD_IOAS_ALLOC, CVFIO_DEVICE_BIND_IOMMUFD, CVFIO_DEVICE_ATTACH_IOMMUFD_PT,
                CVFIO_IOMMUFD_IOAS_IOVA_RANGES, CVFIO_IOMMUFD_IOAS_IOVA_RANGES,  // EMSGSIZE, then with room
                CVFIO_IOMMUFD_IOAS_MAP, CVFIO_IOMMUFD_IOAS_UNMAP, CVFIO_IOMMUFD_DESTROY,
            ])
    }

    @Test func legacyPrefersType1v2AndSetsTheIOMMUBeforeTakingTheDevice() throws {
        let actual = try sequence(.legacy)
        #expect(
            actual == [
                CVFIO_GET_API_VERSION, CVFIO_CHECK_EXTENSION, CVFIO_GROUP_GET_STATUS, CVFIO_GROUP_SET_CONTAINER,
                CVFIO_SET_IOMMU, CVFIO_GROUP_GET_DEVICE_FD,
                CVFIO_IOMMU_GET_INFO, CVFIO_IOMMU_GET_INFO,  // argsz too small for the caps, then with room
                CVFIO_IOMMU_MAP_DMA, CVFIO_IOMMU_UNMAP_DMA,
            ], "\(actual.map { String($0, radix: 16) })")
    }

    @Test func noIOMMUAsksForTheNoIOMMUTypeAndMapsNothing() throws {
        var configuration = MockKernel.Configuration()
        configuration.noIOMMU = true
        #expect(
            try sequence(.noIOMMU, configuration: configuration) == [
                CVFIO_GET_API_VERSION, CVFIO_CHECK_EXTENSION, CVFIO_GROUP_GET_STATUS, CVFIO_GROUP_SET_CONTAINER,
                CVFIO_SET_IOMMU, CVFIO_GROUP_GET_DEVICE_FD,
            ])
    }
}
