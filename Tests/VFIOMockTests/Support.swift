#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import PCI
import SystemPackage
import Testing
import VFIOKit
@testable import VFIOMock

func address(_ text: String) -> PCIAddress { try! PCIAddress(parsing: text) }

/// ioctl with a structure argument passed by pointer.
@discardableResult
func ioctl<T>(_ k: SystemCalls, _ fd: FileDescriptor, _ request: Int, _ value: inout T) throws(Errno) -> Int32 {
    let p = withUnsafeMutablePointer(to: &value) { UInt(bitPattern: $0) }
    return try k.ioctl(fd, UInt(request), p)
}

/// ioctl over a raw buffer (structures with trailing data).
@discardableResult
func ioctl(_ k: SystemCalls, _ fd: FileDescriptor, _ request: Int, buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int32 {
    try k.ioctl(fd, UInt(request), UInt(bitPattern: buffer.baseAddress))
}

/// The errno a call failed with, or nil if it succeeded.
func errno<T>(_ body: () throws -> T) -> Errno? {
    do {
        _ = try body()
        return nil
    } catch let e as Errno {
        return e
    } catch {
        Issue.record("expected an Errno, got \(error)")
        return nil
    }
}

/// Waits up to `milliseconds` for an eventfd to be readable; returns its count (0 on timeout).
func waitEvent(_ fd: FileDescriptor, milliseconds: Int32 = 2000) -> UInt64 {
    var p = pollfd(fd: fd.rawValue, events: Int16(POLLIN), revents: 0)
    guard poll(&p, 1, milliseconds) == 1 else { return 0 }
    var value: UInt64 = 0
    return Glibc.read(fd.rawValue, &value, 8) == 8 ? value : 0
}

/// A memory-BAR device with `msix` MSI-X vectors and `msi` MSI vectors (none when nil), its
/// MSI-X table in a BAR vfio-pci cannot map when `trappedTable`.
func memoryDevice(msix: Int? = nil, msi: Int? = nil, trappedTable: Bool = false) -> MemoryBARDevice {
    var o = MemoryBARDevice.Options()
    o.msixVectors = msix
    o.msiVectors = msi
    o.msixInTrappedBAR = trappedTable
    return MemoryBARDevice(options: o)
}

/// A kernel with one device opened through the legacy container (type1v2).
struct LegacySetup {
    let kernel: MockKernel
    let container: FileDescriptor
    let group: FileDescriptor
    let device: FileDescriptor

    init(
        _ device: SimulatedDevice, at a: PCIAddress = address("0000:01:00.0"), configuration: MockKernel.Configuration = .init(),
        groupID: Int = 7
    ) throws {
        kernel = MockKernel(configuration: configuration)
        try kernel.plug(device, at: a, iommuGroup: groupID)
        container = try kernel.open("/dev/vfio/vfio", O_RDWR)
        group = try kernel.open(configuration.noIOMMU ? "/dev/vfio/noiommu-\(groupID)" : "/dev/vfio/\(groupID)", O_RDWR)
        var fd = container.rawValue
        try ioctl(kernel, group, CVFIO_GROUP_SET_CONTAINER, &fd)
        _ = try kernel.ioctl(container, UInt(CVFIO_SET_IOMMU), UInt(configuration.noIOMMU ? VFIO_NOIOMMU_IOMMU : VFIO_TYPE1v2_IOMMU))
        let k = kernel, g = group
        self.device = FileDescriptor(
            rawValue: try a.description.withCString { p in
                try k.ioctl(g, UInt(CVFIO_GROUP_GET_DEVICE_FD), UInt(bitPattern: p))
            })
    }

    /// Anonymous memory through the seam, so it is process memory the mock can pin.
    func buffer(_ size: Int = 4096) throws -> UnsafeMutableRawPointer {
        try kernel.mmap(length: size, protection: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS, fd: nil, offset: 0)
    }

    func mapDMA(
        vaddr: UnsafeMutableRawPointer, iova: UInt64, size: UInt64,
        flags: UInt32 = UInt32(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)
    ) throws(Errno) {
        var map = vfio_iommu_type1_dma_map(
            argsz: UInt32(MemoryLayout<vfio_iommu_type1_dma_map>.size), flags: flags,
            vaddr: UInt64(UInt(bitPattern: vaddr)), iova: iova, size: size)
        try ioctl(kernel, container, CVFIO_IOMMU_MAP_DMA, &map)
    }

    func unmapDMA(iova: UInt64, size: UInt64, flags: UInt32 = 0) throws(Errno) -> UInt64 {
        var unmap = vfio_iommu_type1_dma_unmap()
        unmap.argsz = UInt32(MemoryLayout<vfio_iommu_type1_dma_unmap>.size)
        unmap.flags = flags
        unmap.iova = iova
        unmap.size = size
        try ioctl(kernel, container, CVFIO_IOMMU_UNMAP_DMA, &unmap)
        return unmap.size
    }

    /// SET_IRQS TRIGGER with eventfds (or -1) for `fds`.
    func setIRQs(index: Int, start: UInt32 = 0, fds: [Int32]) throws(Errno) {
        try VFIOMockTests.setIRQs(
            kernel, device, index: index, start: start, count: UInt32(fds.count),
            flags: UInt32(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER),
            payload: fds.payload)
    }

    func eventfd() throws -> FileDescriptor { try kernel.eventfd(initialValue: 0, flags: Int32(EFD_NONBLOCK)) }

    /// Turns on memory space and bus mastering in the command register, as a driver does
    /// before it takes interrupts or lets the device DMA.
    func enableBusMaster() throws(Errno) {
        try pwrite(VFIO_PCI_CONFIG_REGION_INDEX, offset: 4, width: 2, value: 0x6)
    }

    /// Bus mastering on, then `count` fresh eventfds wired as the triggers of `index`'s vectors
    /// from `start`, in order.
    func wire(index: Int, start: UInt32 = 0, count: Int) throws -> [FileDescriptor] {
        let fds = try (0..<count).map { _ in try eventfd() }
        try enableBusMaster()
        try setIRQs(index: index, start: start, fds: fds.map(\.rawValue))
        return fds
    }

    func pread(_ region: Int, offset: Int, width: Int) throws(Errno) -> UInt64 {
        try regionRead(kernel, device, region, offset: offset, width: width)
    }

    func pwrite(_ region: Int, offset: Int, width: Int, value: UInt64) throws(Errno) {
        try regionWrite(kernel, device, region, offset: offset, width: width, value: value)
    }
}

func regionRead(_ k: SystemCalls, _ fd: FileDescriptor, _ region: Int, offset: Int, width: Int) throws(Errno) -> UInt64 {
    var v: UInt64 = 0
    let n = try withUnsafeMutableBytes(of: &v) { (b) throws(Errno) -> Int in
        try k.pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: b[..<width]), at: Int64(region) << 40 | Int64(offset))
    }
    #expect(n == width)
    return v
}

func regionWrite(_ k: SystemCalls, _ fd: FileDescriptor, _ region: Int, offset: Int, width: Int, value: UInt64) throws(Errno) {
    var v = value
    let n = try withUnsafeBytes(of: &v) { (b) throws(Errno) -> Int in
        try k.pwrite(fd, from: UnsafeRawBufferPointer(rebasing: b[..<width]), at: Int64(region) << 40 | Int64(offset))
    }
    #expect(n == width)
}

/// SET_IRQS with an arbitrary header and payload; argsz defaults to header + payload.
func setIRQs(
    _ k: SystemCalls, _ device: FileDescriptor, index: Int, start: UInt32, count: UInt32, flags: UInt32,
    payload: [UInt8] = [], argsz: UInt32? = nil
) throws(Errno) {
    var bytes = [UInt8](repeating: 0, count: 20 + payload.count)
    let size = argsz ?? UInt32(bytes.count)
    for (i, v) in [size, flags, UInt32(index), start, count].enumerated() {
        withUnsafeBytes(of: v) { bytes.replaceSubrange(4 * i..<4 * i + 4, with: $0) }
    }
    bytes.replaceSubrange(20..<20 + payload.count, with: payload)
    let b = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 8)
    defer { b.deallocate() }
    b.copyBytes(from: bytes)
    try ioctl(k, device, CVFIO_DEVICE_SET_IRQS, buffer: b)
}

extension Array where Element == Int32 {
    var payload: [UInt8] { flatMap { v in Swift.withUnsafeBytes(of: v) { [UInt8]($0) } } }
}
