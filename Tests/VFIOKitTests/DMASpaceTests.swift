import PCI
import Testing
@testable import VFIOKit
import VFIOMock

/// DMA buffers and their device addresses, checked against what the mock IOMMU holds and
/// against DMA the simulated device performs.
@Suite struct DMASpaceTests {
    static let allBackends: [Backend] = [.legacy, .iommufd, .noIOMMU, .uio]
    static let translating: [Backend] = [.legacy, .iommufd]

    /// A device-side write of `bytes` at `address`, through the mock's IOMMU (or physical memory).
    func deviceWrite(_ bus: DeviceBus, _ bytes: [UInt8], at address: UInt64) -> Bool {
        bytes.withUnsafeBytes { bus.dmaWrite(iova: address, from: $0) }
    }

    func deviceRead(_ bus: DeviceBus, count: Int, at address: UInt64) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        let ok = bytes.withUnsafeMutableBytes { bus.dmaRead(iova: address, into: $0) }
        return ok ? bytes : nil
    }

    @Test(arguments: translating)
    func buffersAreMappedWhereTheKernelSaysAndUnmappedWhenFreed(_ backend: Backend) throws {
        let machine = MockMachine()
        let device = try machine.open(Devices.memory(), on: backend)
        defer { device.close() }
        let a = try device.dma.allocate(100)
        let b = try device.dma.allocate(3 * 4096 + 1)
        #expect(a.bytes.count == 4096 && b.bytes.count == 4 * 4096)
        #expect(a.bytes.allSatisfy { $0 == 0 } && b.bytes.allSatisfy { $0 == 0 })
        #expect(a.deviceAddress != 0 && a.deviceAddress % 4096 == 0 && b.deviceAddress % 4096 == 0)
        #expect(a.deviceAddress + 4096 <= b.deviceAddress || b.deviceAddress + UInt64(b.bytes.count) <= a.deviceAddress)
        let mappings = machine.kernel.dmaMappings(of: MockMachine.primary)
        #expect(mappings.count == 2)
        for (address, memory) in [(a.deviceAddress, a.bytes), (b.deviceAddress, b.bytes)] {
            let m = try #require(mappings.first { $0.iova == address })
            #expect(m.size == UInt64(memory.count))
            #expect(m.vaddr == UInt64(UInt(bitPattern: memory.baseAddress)))
            #expect(m.readable && m.writable)
        }
        #expect(device.dma.mappingCount == 2 && device.dma.mappedBytes == 5 * 4096)

        let aMemory = a.bytes.baseAddress!
        let bAddress = b.deviceAddress
        try a.free()
        #expect(machine.kernel.dmaMappings(of: MockMachine.primary).map(\.iova) == [bAddress])
        #expect(device.dma.mappingCount == 1)
        // The memory went back too.
        #expect(machine.kernel.physicalAddress(of: aMemory) == nil)
        try b.free()
        #expect(machine.kernel.dmaMappings(of: MockMachine.primary).isEmpty)
    }

    @Test(arguments: translating)
    func iovasStayInsideTheKernelsRanges(_ backend: Backend) throws {
        let ranges = [IOVARange(first: 0x10_0000, last: 0x1f_ffff), IOVARange(first: 0x100_0000, last: 0xffff_ffff)]
        let machine = MockMachine { $0.iovaRanges = ranges }
        let device = try machine.open(Devices.memory(), on: backend)
        defer { device.close() }
        #expect(device.dma.iovaRanges == ranges.map { $0.first...$0.last })
        let half = 512 * 1024
        let first = try device.dma.allocate(half)
        let second = try device.dma.allocate(half)
        let third = try device.dma.allocate(half)  // the first range is full
        #expect(first.deviceAddress == 0x10_0000)
        #expect(second.deviceAddress == 0x18_0000)
        #expect(third.deviceAddress == 0x100_0000)
        for address in [first.deviceAddress, second.deviceAddress, third.deviceAddress] {
            let last = address + UInt64(half) - 1
            #expect(ranges.contains { $0.contains(address, last) })
        }
    }

    @Test(arguments: translating)
    func aDeviceLimitKeepsIOVAsBelowIt(_ backend: Backend) throws {
        let machine = MockMachine()
        let device = try machine.open(Devices.memory(), on: backend)
        defer { device.close() }
        let limit: UInt64 = 1 << 28
        for _ in 0..<4 {
            let buffer = try device.dma.allocate(64 * 1024, below: limit)
            #expect(buffer.deviceAddress + UInt64(buffer.bytes.count) <= limit)
        }
    }

    @Test(arguments: translating)
    func aLimitBelowEveryRangeIsIOVAExhaustionAndMapsNothing(_ backend: Backend) throws {
        let machine = MockMachine { $0.iovaRanges = [IOVARange(first: 1 << 32, last: (1 << 48) - 1)] }
        let device = try machine.open(Devices.memory(), on: backend)
        defer { device.close() }
        #expect(throws: VFIOError.iovaSpaceExhausted(size: 4096, limit: 1 << 28)) {
            _ = try device.dma.allocate(4096, below: 1 << 28)
        }
        #expect(machine.kernel.dmaMappings(of: MockMachine.primary).isEmpty)
        #expect(device.dma.mappingCount == 0)
        // Without the limit the same request fits.
        let buffer = try device.dma.allocate(4096)
        #expect(buffer.deviceAddress >= 1 << 32)
    }

    @Test func type1sMappingLimitIsHonoured() throws {
        let machine = MockMachine { $0.dmaEntryLimit = 3 }
        let device = try machine.open(Devices.memory(), on: .legacy)
        defer { device.close() }
        #expect(device.dma.mappingLimit == 3)
        let first = try device.dma.allocate(4096)
        let second = try device.dma.allocate(4096)
        let third = try device.dma.allocate(4096)
        #expect(throws: VFIOError.dmaMappingLimit(3)) { _ = try device.dma.allocate(4096) }
        #expect(machine.kernel.dmaMappings(of: MockMachine.primary).count == 3)
        try second.free()
        let again = try device.dma.allocate(4096)
        _ = (first.deviceAddress, third.deviceAddress)
        #expect(machine.kernel.dmaMappings(of: MockMachine.primary).contains { $0.iova == again.deviceAddress })
    }

    @Test(arguments: allBackends)
    func aFreedIdentityNeverReleasesTheBufferThatReusedItsIOVA(_ backend: Backend) throws {
        let machine = MockMachine(for: backend)
        let device = try machine.open(Devices.memory(), on: backend)
        defer { device.close() }
        let old = try device.dma.allocate(4096)
        let oldID = old.handle.id
        let oldAddress = old.deviceAddress
        try old.free()
        let reused = try device.dma.allocate(4096)
        if device.dma.translates { #expect(reused.deviceAddress == oldAddress) }  // the IOVA came back
        // What a stale copy would do, were copies possible: free by the old identity.
        #expect(throws: VFIOError.invalidArgument(operation: "freeing DMA mapping \(oldID)", reason: "it was freed already")) {
            try device.dma.free(id: oldID)
        }
        #expect(device.dma.mappingCount == 1)
        reused.bytes.storeBytes(of: 0x1234_5678, as: UInt32.self)  // the live buffer is untouched
        #expect(reused.bytes.load(as: UInt32.self) == 0x1234_5678)
        if device.dma.translates {
            #expect(machine.kernel.dmaMappings(of: MockMachine.primary).map(\.iova) == [reused.deviceAddress])
        }
    }

    @Test(arguments: translating)
    func aBufferLetGoIsUnmappedAndFreed(_ backend: Backend) throws {
        let machine = MockMachine()
        let device = try machine.open(Devices.memory(), on: backend)
        defer { device.close() }
        var memory: UnsafeMutableRawPointer?
        do {
            let scoped = try device.dma.allocate(4096)
            memory = scoped.bytes.baseAddress
            #expect(device.dma.mappingCount == 1)
        }
        #expect(device.dma.mappingCount == 0)
        #expect(machine.kernel.dmaMappings(of: MockMachine.primary).isEmpty)
        #expect(machine.kernel.physicalAddress(of: try #require(memory)) == nil)
    }

    @Test(arguments: translating)
    func aBufferOutlivingItsContextKeepsItsMemoryButNotItsMapping(_ backend: Backend) throws {
        let machine = MockMachine()
        let device = try machine.open(Devices.memory(), on: backend)
        let buffer = try device.dma.allocate(4096)
        device.close()  // a private context: it closes with the device
        #expect(machine.kernel.dmaMappings(of: MockMachine.primary).isEmpty)
        #expect(device.dma.mappingCount == 0)
        buffer.bytes.storeBytes(of: 0xabcd, as: UInt16.self)  // still the process's memory
        #expect(buffer.bytes.load(as: UInt16.self) == 0xabcd)
        #expect(throws: VFIOError.contextClosed(operation: "allocating 4096 bytes of DMA memory")) { _ = try device.dma.allocate(4096) }
    }

    @Test(arguments: translating)
    func callerMemoryIsMappedAndLeftToTheCaller(_ backend: Backend) throws {
        let machine = MockMachine()
        let device = try machine.open(Devices.memory(), on: backend)
        defer { device.close() }
        // Anonymous memory made through the seam, so the mock knows it as process memory.
        let pointer = try machine.kernel.mmap(length: 8192, protection: 3, flags: 0x22, fd: nil, offset: 0)  // RW, private|anonymous
        defer { try? machine.kernel.munmap(pointer, length: 8192) }
        let memory = UnsafeMutableRawBufferPointer(start: pointer, count: 8192)
        let mapping = try device.dma.map(memory)
        #expect(machine.kernel.dmaMappings(of: MockMachine.primary).first?.vaddr == UInt64(UInt(bitPattern: pointer)))
        #expect(machine.kernel.dmaMappings(of: MockMachine.primary).first?.iova == mapping.deviceAddress)
        try mapping.unmap()
        #expect(machine.kernel.dmaMappings(of: MockMachine.primary).isEmpty)
        #expect(machine.kernel.physicalAddress(of: pointer) != nil)  // still the caller's
    }

    @Test(arguments: allBackends)
    func theDeviceReachesBuffersAtTheirDeviceAddress(_ backend: Backend) throws {
        let machine = MockMachine(for: backend)
        let model = Devices.memory()
        let device = try machine.open(model, on: backend)
        defer { device.close() }
        let bus = try #require(model.bus)
        try device.setBusMaster(true)
        let buffer = try device.dma.allocate(4096)
        let pattern = (0..<256).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        #expect(deviceWrite(bus, pattern, at: buffer.deviceAddress + 512))
        #expect(Array(buffer.bytes[512..<768]) == pattern)
        buffer.bytes.storeBytes(of: 0xfeed_face_cafe_beef, toByteOffset: 4088, as: UInt64.self)
        #expect(deviceRead(bus, count: 8, at: buffer.deviceAddress + 4088) == [0xef, 0xbe, 0xfe, 0xca, 0xce, 0xfa, 0xed, 0xfe])
        #expect(machine.kernel.dmaFaults.isEmpty)
    }

    @Test(arguments: translating)
    func aMultiPageBufferIsContiguousForTheDevice(_ backend: Backend) throws {
        let machine = MockMachine()
        let model = Devices.memory()
        let device = try machine.open(model, on: backend)
        defer { device.close() }
        try device.setBusMaster(true)
        let buffer = try device.dma.allocate(5 * 4096)
        let pattern = (0..<buffer.bytes.count).map { UInt8(truncatingIfNeeded: $0 / 4096 &* 17 &+ $0) }
        #expect(deviceWrite(try #require(model.bus), pattern, at: buffer.deviceAddress))
        #expect(Array(buffer.bytes) == pattern)
    }

    @Test func withoutBusMasterTheDeviceCannotDMA() throws {
        let machine = MockMachine()
        let model = Devices.memory()
        let device = try machine.open(model, on: .iommufd)
        defer { device.close() }
        let buffer = try device.dma.allocate(4096)
        #expect(!deviceWrite(try #require(model.bus), [1, 2, 3], at: buffer.deviceAddress))
        #expect(machine.kernel.dmaFaults.last?.reason == .busMasterDisabled)
        #expect(buffer.bytes[0] == 0)
    }

    @Test(arguments: translating)
    func dmaToAnUnmappedIOVAIsAFaultInTheMockAndInTheFaultLog(_ backend: Backend) throws {
        let machine = MockMachine()
        let model = Devices.memory()
        let device = try machine.open(model, on: backend)
        defer { device.close() }
        let bus = try #require(model.bus)
        try device.setBusMaster(true)
        let log = try device.openFaultLog()
        #expect(log.newFaults().isEmpty)
        let stray = try device.dma.allocate(4096)
        let kept = try device.dma.allocate(4096)
        let strayAddress = stray.deviceAddress
        try stray.free()

        #expect(!deviceWrite(bus, [0xaa, 0xbb], at: strayAddress + 0x10))
        #expect(deviceRead(bus, count: 4, at: strayAddress) == nil)
        let recorded = machine.kernel.dmaFaults
        #expect(recorded.map(\.device) == [MockMachine.primary, MockMachine.primary])
        #expect(recorded.map(\.iova) == [strayAddress + 0x10, strayAddress])
        #expect(recorded.map(\.length) == [2, 4])
        #expect(recorded.map(\.isWrite) == [true, false])
        #expect(recorded.map(\.reason) == [.unmapped, .unmapped])
        let faults = log.newFaults()
        #expect(faults.map(\.address) == [strayAddress + 0x10, strayAddress])
        #expect(faults.map(\.isWrite) == [true, false])
        #expect(log.newFaults().isEmpty)  // each fault is reported once
        // A mapped neighbour still works, and a fault of another device is not ours.
        #expect(deviceWrite(bus, [1], at: kept.deviceAddress))
        let neighbour = Devices.memory()
        let other = try machine.open(neighbour, on: backend, at: pciAddress("0000:02:00.0"))
        defer { other.close() }
        try other.setBusMaster(true)
        #expect(!deviceWrite(try #require(neighbour.bus), [1], at: 0x7000_0000))
        #expect(log.newFaults().isEmpty)
        #expect(try other.openFaultLog().newFaults().isEmpty)  // opened after the fault
    }

    @Test(arguments: [Backend.noIOMMU, .uio])
    func withoutAnIOMMUDeviceAddressesArePhysical(_ backend: Backend) throws {
        let machine = MockMachine(for: backend)
        let model = Devices.memory()
        let device = try machine.open(model, on: backend)
        defer { device.close() }
        #expect(!device.dma.translates)
        let buffer = try device.dma.allocate(1024)
        #expect(buffer.deviceAddress == machine.kernel.physicalAddress(of: buffer.bytes.baseAddress!))
        #expect(buffer.deviceAddress < 1 << 28)  // low enough for edu's 28-bit mask
        #expect(machine.kernel.dmaMappings(of: MockMachine.primary).isEmpty)
        // A stray physical address is refused by the bus and no IOMMU reports it.
        let log = try device.openFaultLog()
        try device.setBusMaster(true)
        let physical = buffer.deviceAddress
        try buffer.free()
        #expect(!deviceWrite(try #require(model.bus), [1], at: physical))
        #expect(machine.kernel.dmaFaults.last?.reason == .unmapped)
        #expect(log.newFaults().isEmpty)
    }

    @Test(arguments: [Backend.noIOMMU, .uio])
    func physicalMemoryBeyondTheDevicesReachIsRefused(_ backend: Backend) throws {
        let machine = MockMachine(for: backend)
        let device = try machine.open(Devices.memory(), on: backend)
        defer { device.close() }
        let error = #expect(throws: VFIOError.self) { _ = try device.dma.allocate(4096, below: 0x10_0000) }
        guard case .beyondDeviceReach(let physical, 4096, 0x10_0000)? = error else {
            Issue.record("expected beyondDeviceReach, got \(String(describing: error))")
            return
        }
        #expect(physical >= 0x10_0000)
        #expect(device.dma.mappingCount == 0)
    }

    @Test func withoutAnIOMMUABufferLargerThanAPageIsOneHugePageOrAClearError() throws {
        let machine = MockMachine(for: .noIOMMU)
        let model = Devices.memory()
        let device = try machine.open(model, on: .noIOMMU)
        defer { device.close() }
        let bus = try #require(model.bus)
        do throws(VFIOError) {
            let buffer = try device.dma.allocate(3 * 4096)
            // The host has hugepages: the buffer is physically contiguous.
            try device.setBusMaster(true)
            let pattern = (0..<3 * 4096).map { UInt8(truncatingIfNeeded: $0 >> 4) }
            #expect(deviceWrite(bus, pattern, at: buffer.deviceAddress))
            #expect(Array(buffer.bytes[0..<pattern.count]) == pattern)
        } catch .hugePagesUnavailable(let bytes, _) {
            #expect(bytes == 2 << 20)
            #expect("\(VFIOError.hugePagesUnavailable(bytes: bytes, errno: .noMemory))".contains("nr_hugepages"))
            #expect(device.dma.mappingCount == 0)
        } catch {
            Issue.record("expected a buffer or hugePagesUnavailable, got \(error)")
        }
    }
}
