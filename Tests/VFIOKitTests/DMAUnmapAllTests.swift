import PCI
import Testing
import VFIOKit
import VFIOMock

/// `DMASpace.unmapAll()`: what a host does between stopping drivers and resetting devices.
@Suite struct DMAUnmapAllTests {
    @Test(arguments: [Backend.legacy, .iommufd])
    func removesEveryMappingAndLeavesTheSpaceUsable(_ backend: Backend) throws {
        let machine = MockMachine()
        let device = try machine.open(Devices.memory(), on: backend)
        defer { device.close() }
        let kept = try device.dma.allocate(4096)
        let other = try device.dma.allocate(8192)
        #expect(machine.kernel.dmaMappings(of: MockMachine.primary).count == 2)

        device.dma.unmapAll()
        #expect(machine.kernel.dmaMappings(of: MockMachine.primary).isEmpty)
        #expect(device.dma.mappingCount == 0)
        #expect(device.dma.mappedBytes == 0)
        // A buffer that outlived the unmapping still frees its memory, once, without error.
        try kept.free()
        _ = consume other

        let again = try device.dma.allocate(4096)
        #expect(machine.kernel.dmaMappings(of: MockMachine.primary).map(\.iova) == [again.deviceAddress])
        #expect(device.dma.mappedBytes == 4096)
    }
}
