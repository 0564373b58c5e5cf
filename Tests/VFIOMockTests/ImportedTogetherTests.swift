import Testing
import VFIOKit
import VFIOMock

/// A file that imports both the framework and the mock, as a driver's tests (and the README's
/// mock snippet) do, names the framework's types without qualifying them: this file would not
/// compile if the mock declared a public type of the same name.
@Suite struct ImportedTogetherTests {
    @Test func theFrameworksDMATypesAreUnambiguousBesideTheMock() throws {
        let kernel = MockKernel()
        let address = try PCIAddress(parsing: "0000:00:04.0")
        try kernel.plug(EduDevice(), at: address)
        let device = try PCIDevice.open(address, system: kernel)
        defer { device.close() }
        let buffer: DMABuffer = try device.dma.allocate(4096)
        let mappings: [IOMMUMapping] = kernel.dmaMappings(of: address)
        #expect(mappings.count == 1 && mappings.first?.iova == buffer.deviceAddress)
        _ = DMAMapping.self
    }
}
