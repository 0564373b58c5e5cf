import PCI
import VFIOKit
import VFIOMock

/// A mock kernel with one simulated edu device, set up for the requested backend.
struct SimulatedEdu {
    let kernel: MockKernel
    let address: PCIAddress

    init(backend: Backend) throws {
        var configuration = MockKernel.Configuration()
        configuration.noIOMMU = backend == .noIOMMU
        kernel = MockKernel(configuration: configuration)
        address = try PCIAddress(domain: 0, bus: 0, device: 4, function: 0)
        try kernel.plug(EduDevice(), at: address, driver: backend == .uio ? .uioPCIGeneric : .vfioPCI)
    }
}
