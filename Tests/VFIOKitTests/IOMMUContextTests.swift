import PCI
import Testing
import VFIODrivers
import VFIOKit
import VFIOMock

/// Devices sharing one IOMMU context, as multi-function devices and PF+VF groups need.
@Suite struct IOMMUContextTests {
    static let other = pciAddress("0000:02:00.0")

    func deviceWrite(_ bus: DeviceBus, _ bytes: [UInt8], at address: UInt64) -> Bool {
        bytes.withUnsafeBytes { bus.dmaWrite(iova: address, from: $0) }
    }

    func deviceRead(_ bus: DeviceBus, count: Int, at address: UInt64) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        return bytes.withUnsafeMutableBytes { bus.dmaRead(iova: address, into: $0) } ? bytes : nil
    }

    @Test func twoFunctionsOfOneGroupOpenInOneContext() throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.memory(), at: MockMachine.primary, iommuGroup: 5)
        try machine.kernel.plug(Devices.memory(), at: MockMachine.sibling, iommuGroup: 5)
        let context = IOMMUContext(backend: .legacy, system: machine.kernel)
        let first = try context.open(MockMachine.primary)
        let second = try context.open(MockMachine.sibling)
        #expect(context.mode == .type1v2)
        #expect(Set(context.devices.map(\.address)) == [MockMachine.primary, MockMachine.sibling])
        // One container, one group, two device files.
        #expect(machine.kernel.openFileCount == 4)
        // The group is still open for the second function after the first closes.
        first.close()
        #expect(try second.readConfig(UInt16.self, at: 0) == 0x1b36)
        #expect(machine.kernel.openFileCount == 3)
        context.close()
        #expect(second.isClosed)
        #expect(machine.kernel.openFileCount == 0)
    }

    @Test func privateContextsCannotShareAGroupAndSaySoClearly() throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.memory(), at: MockMachine.primary, iommuGroup: 5)
        try machine.kernel.plug(Devices.memory(), at: MockMachine.sibling, iommuGroup: 5)
        let first = try PCIDevice.open(MockMachine.primary, backend: .legacy, system: machine.kernel)
        defer { first.close() }
        let error = #expect(throws: VFIOError.self) {
            _ = try PCIDevice.open(MockMachine.sibling, backend: .legacy, system: machine.kernel)
        }
        #expect(error == .systemCall(operation: SystemCall("open", path: "/dev/vfio/5", device: MockMachine.sibling), errno: .resourceBusy))
        #expect(error?.description.contains("another IOMMU context in this one") == true)
    }

    @Test(arguments: [Backend.legacy, .iommufd])
    func oneBufferServesTwoDevicesOfDifferentGroups(_ backend: Backend) throws {
        let machine = MockMachine()
        let writerModel = Devices.memory()
        let readerModel = Devices.memory()
        try machine.kernel.plug(writerModel, at: MockMachine.primary, iommuGroup: 5)
        try machine.kernel.plug(readerModel, at: Self.other, iommuGroup: 6)
        let context = IOMMUContext(backend: backend, system: machine.kernel)
        defer { context.close() }
        let writer = try context.open(MockMachine.primary)
        let reader = try context.open(Self.other)
        #expect(writer.backend == backend && reader.backend == backend)
        try writer.setBusMaster(true)
        try reader.setBusMaster(true)
        let buffer = try context.dma.allocate(4096)
        // Mapped once, seen by both devices.
        #expect(machine.kernel.dmaMappings(of: MockMachine.primary).map(\.iova) == [buffer.deviceAddress])
        #expect(machine.kernel.dmaMappings(of: Self.other).map(\.iova) == [buffer.deviceAddress])
        let pattern = (0..<64).map { UInt8($0 * 3 & 0xff) }
        #expect(deviceWrite(try #require(writerModel.bus), pattern, at: buffer.deviceAddress + 128))
        #expect(deviceRead(try #require(readerModel.bus), count: 64, at: buffer.deviceAddress + 128) == pattern)
        #expect(machine.kernel.dmaFaults.isEmpty)
        // Closing one device leaves the buffer mapped for the other.
        writer.close()
        #expect(deviceRead(try #require(readerModel.bus), count: 64, at: buffer.deviceAddress + 128) == pattern)
    }

    @Test func theLastGroupStaysWhileDMAIsMappedSoBuffersKeepWorking() throws {
        let machine = MockMachine()
        let model = Devices.memory()
        try machine.kernel.plug(model, at: MockMachine.primary, iommuGroup: 5)
        let context = IOMMUContext(backend: .legacy, system: machine.kernel)
        let device = try context.open(MockMachine.primary)
        let buffer = try context.dma.allocate(4096)
        device.close()
        // The container would drop every mapping with its last group, so the group is kept.
        #expect(context.dma.mappingCount == 1)
        let again = try context.open(MockMachine.primary)
        try again.setBusMaster(true)
        #expect(deviceWrite(try #require(model.bus), [7], at: buffer.deviceAddress))
        #expect(buffer.bytes[0] == 7)
        context.close()
        #expect(machine.kernel.openFileCount == 0)
    }

    @Test(arguments: [Backend.legacy, .iommufd, .uio])
    func aFunctionIsOpenedOnceInAProcess(_ backend: Backend) throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.memory(), at: MockMachine.primary, driver: backend == .uio ? .uioPCIGeneric : .vfioPCI)
        let context = IOMMUContext(backend: backend, system: machine.kernel)
        defer { context.close() }
        let device = try context.open(MockMachine.primary)
        #expect(throws: VFIOError.alreadyOpen(MockMachine.primary)) { _ = try context.open(MockMachine.primary) }
        #expect(throws: VFIOError.alreadyOpen(MockMachine.primary)) {
            _ = try PCIDevice.open(MockMachine.primary, backend: backend, system: machine.kernel)
        }
        device.close()
        _ = try context.open(MockMachine.primary)  // free again once closed
    }

    @Test func dmaNeedsADeviceAndAClosedContextRefusesEverything() throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.memory(), at: MockMachine.primary)
        let context = IOMMUContext(backend: .iommufd, system: machine.kernel)
        #expect(throws: VFIOError.contextEmpty(operation: "allocating 4096 bytes of DMA memory")) { _ = try context.dma.allocate(4096) }
        context.close()
        #expect(throws: VFIOError.contextClosed(operation: "opening 0000:01:00.0")) { _ = try context.open(MockMachine.primary) }
        #expect(machine.kernel.openFileCount == 0)
    }

    @Test func aContextKeepsOneBackend() throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.memory(), at: MockMachine.primary)
        try machine.kernel.plug(Devices.memory(), at: Self.other, driver: .uioPCIGeneric)
        let context = IOMMUContext(system: machine.kernel)
        defer { context.close() }
        _ = try context.open(MockMachine.primary)
        #expect(throws: VFIOError.contextMismatch(Self.other, context: .iommufd, driver: "uio_pci_generic")) {
            _ = try context.open(Self.other)
        }
    }

    @Test(arguments: [IOMMUMode.type1, .type1v2, .iommufd])
    func aContextRunsInTheModeItWasGiven(_ mode: IOMMUMode) throws {
        let machine = MockMachine()
        let model = Devices.edu()
        try machine.kernel.plug(model, at: MockMachine.primary)
        let context = IOMMUContext(mode: mode, system: machine.kernel)
        defer { context.close() }
        let device = try context.open(MockMachine.primary)
        #expect(context.mode == mode && device.backend == mode.backend)
        let loop = try machine.startedLoop()
        defer { loop.stop() }
        let steps = EduSelfTest.run(on: device, loop: loop) { _ in }
        #expect(steps.allSatisfy { $0.passed != false }, "\(steps)")
    }

    @Test func theModesAreTheSelftestsTable() {
        #expect(
            IOMMUMode.all.prefix(5).map(\.name) == [
                "vfio_type1_iommu", "vfio_type1v2_iommu", "iommufd_compat_type1", "iommufd_compat_type1v2", "iommufd",
            ])
        #expect(IOMMUMode.iommufdCompatType1v2.containerPath == "/dev/iommu")
        #expect(IOMMUMode.iommufd.containerPath == nil)
    }
}
