#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import SystemPackage
import Testing
import VFIOKit
import VFIOMock

/// DMA memory behind an IOMMU lives in memfds, and the mock's IOMMU pins their pages, not the
/// addresses they were mapped at: what a successor process needs to keep a device's DMA.
@Suite struct MemoryFileDMATests {
    /// A device-side read of `count` bytes at `address`; nil when the IOMMU refused it.
    static func deviceRead(_ bus: DeviceBus, count: Int, at address: UInt64) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        let ok = bytes.withUnsafeMutableBytes { bus.dmaRead(iova: address, into: $0) }
        return ok ? bytes : nil
    }

    @Test(arguments: [Backend.legacy, .iommufd, .noIOMMU])
    func buffersBehindAnIOMMUAreMemoryFiles(_ backend: Backend) throws {
        let machine = MockMachine(for: backend)
        let made = Atomic(0)
        let seam = InterposedKernel(machine.kernel) { call in
            if call == .memoryFile { made.add(1, ordering: .relaxed) }
        }
        let bus = try machine.kernel.plug(Devices.memory(), at: MockMachine.primary)
        let device = try PCIDevice.open(MockMachine.primary, backend: backend, system: seam)
        defer { device.close() }
        try device.setBusMaster(true)
        let buffer = try device.dma.allocate(4096)
        #expect(made.load(ordering: .relaxed) == (backend == .noIOMMU ? 0 : 1))
        // The device and the CPU see the same bytes either way.
        for i in 0..<64 { buffer.bytes[i] = UInt8(i) }
        #expect(Self.deviceRead(bus, count: 64, at: buffer.deviceAddress) == (0..<64).map { UInt8($0) })
        try buffer.free()
    }

    @Test(arguments: [Backend.legacy, .iommufd])
    func theIOMMUHoldsTheMemoryFilesPagesAfterTheirMappingIsGone(_ backend: Backend) throws {
        let machine = MockMachine(for: backend)
        let kernel = machine.kernel
        let bus = try kernel.plug(Devices.memory(), at: MockMachine.primary)
        let device = try PCIDevice.open(MockMachine.primary, backend: backend, system: kernel)
        defer { device.close() }
        try device.setBusMaster(true)
        let file = try kernel.memoryFile(name: "pinned", size: 4096, flags: 0)
        defer { try? kernel.close(file) }
        let first = try kernel.mmap(length: 4096, protection: PROT_READ | PROT_WRITE, flags: MAP_SHARED, fd: file, offset: 0)
        let memory = UnsafeMutableRawBufferPointer(start: first, count: 4096)
        for i in 0..<16 { memory[i] = 0xa0 + UInt8(i) }
        let mapping = try device.dma.map(memory)
        try kernel.munmap(first, length: 4096)
        // The pages the kernel pinned at map time are still the device's.
        #expect(Self.deviceRead(bus, count: 16, at: mapping.deviceAddress) == (0..<16).map { 0xa0 + UInt8($0) })
        let written: [UInt8] = [1, 2, 3, 4]
        #expect(written.withUnsafeBytes { bus.dmaWrite(iova: mapping.deviceAddress + 100, from: $0) })
        let second = try kernel.mmap(length: 4096, protection: PROT_READ | PROT_WRITE, flags: MAP_SHARED, fd: file, offset: 0)
        defer { try? kernel.munmap(second, length: 4096) }
        #expect(Array(UnsafeRawBufferPointer(start: second + 100, count: 4)) == written)
        try mapping.unmap()
        #expect(kernel.dmaFaults.isEmpty)
    }
}
