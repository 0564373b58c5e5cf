import CVFIO
import PCI
import SystemPackage
import Testing
import VFIOMock
@testable import VFIOKit

/// Passes every call to a mock kernel and records the ioctls, so a test can check the order
/// in which each backend drives the kernel.
private final class RecordingKernel: SystemCalls, @unchecked Sendable {
    let kernel: MockKernel
    private(set) var ioctls: [Int] = []

    init(_ kernel: MockKernel) { self.kernel = kernel }

    func ioctl(_ fd: FileDescriptor, _ request: UInt, _ argument: UInt) throws(Errno) -> Int32 {
        ioctls.append(Int(request))
        return try kernel.ioctl(fd, request, argument)
    }

    func open(_ path: String, _ flags: Int32) throws(Errno) -> FileDescriptor { try kernel.open(path, flags) }
    func close(_ fd: FileDescriptor) throws(Errno) { try kernel.close(fd) }
    func mmap(length: Int, protection: Int32, flags: Int32, fd: FileDescriptor?, offset: Int64) throws(Errno) -> UnsafeMutableRawPointer {
        try kernel.mmap(length: length, protection: protection, flags: flags, fd: fd, offset: offset)
    }
    func munmap(_ address: UnsafeMutableRawPointer, length: Int) throws(Errno) { try kernel.munmap(address, length: length) }
    func pread(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(Errno) -> Int {
        try kernel.pread(fd, into: buffer, at: offset)
    }
    func pwrite(_ fd: FileDescriptor, from buffer: UnsafeRawBufferPointer, at offset: Int64) throws(Errno) -> Int {
        try kernel.pwrite(fd, from: buffer, at: offset)
    }
    func read(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int { try kernel.read(fd, into: buffer) }
    func write(_ fd: FileDescriptor, from buffer: UnsafeRawBufferPointer) throws(Errno) -> Int { try kernel.write(fd, from: buffer) }
    func eventfd(initialValue: UInt32, flags: Int32) throws(Errno) -> FileDescriptor { try kernel.eventfd(initialValue: initialValue, flags: flags) }
    func epollCreate() throws(Errno) -> FileDescriptor { try kernel.epollCreate() }
    func epollControl(_ epoll: FileDescriptor, _ operation: Int32, _ fd: FileDescriptor, events: UInt32, data: UInt64) throws(Errno) {
        try kernel.epollControl(epoll, operation, fd, events: events, data: data)
    }
    func epollWait(
        _ epoll: FileDescriptor, events: UnsafeMutablePointer<UInt32>, data: UnsafeMutablePointer<UInt64>, capacity: Int32,
        timeoutMilliseconds: Int32
    ) throws(Errno) -> Int {
        try kernel.epollWait(epoll, events: events, data: data, capacity: capacity, timeoutMilliseconds: timeoutMilliseconds)
    }
    func readLink(_ path: String) throws(Errno) -> String { try kernel.readLink(path) }
    func listDirectory(_ path: String) throws(Errno) -> [String] { try kernel.listDirectory(path) }
}

@Suite struct IoctlSequenceTests {
    let address = try! PCIAddress(parsing: "0000:00:04.0")

    /// Opens the device, maps and unmaps one buffer, and closes, returning the ioctls made.
    private func sequence(_ backend: Backend, configuration: MockKernel.Configuration = .init()) throws -> [Int] {
        let recorder = RecordingKernel(MockKernel(configuration: configuration))
        try recorder.kernel.plug(MemoryBARDevice(), at: address)
        let device = try PCIDevice.open(address, backend: backend, system: recorder)
        let buffer = try device.dma.allocate(4096)
        try buffer.free()
        device.close()
        // Region and IRQ info queries come and go with what a driver asks; the order of the
        // set-up and DMA calls is what the kernel constrains.
        let info = [CVFIO_DEVICE_GET_INFO, CVFIO_DEVICE_GET_REGION_INFO, CVFIO_DEVICE_GET_IRQ_INFO]
        return recorder.ioctls.filter { !info.contains($0) }
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
