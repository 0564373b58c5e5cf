import PCI
import VFIODrivers
import VFIOKit
import VFIOMock

/// The sample drivers `vfiokit selftest` knows: each runs end to end on a device, and names the
/// simulated device it runs on when no address is given.
struct SampleProgram: Sendable {
    let name: String
    let summary: String
    let simulatedDevice: @Sendable () -> any SimulatedDevice
    let run: @Sendable (PCIDevice, EventLoop, @escaping (SelfTestStep) -> Void) -> [SelfTestStep]

    static let all = [
        SampleProgram(
            name: EduDriver.name, summary: "QEMU's edu device: ID, liveness, factorial by interrupt, raise/ack, DMA, IOMMU fault",
            simulatedDevice: { EduDevice() }, run: EduSelfTest.run),
        SampleProgram(
            name: MSIXLoopbackTest.name, summary: "any MSI-X device: arm and grow every vector, fire each with VFIO's trigger",
            simulatedDevice: {
                var options = MemoryBARDevice.Options()
                options.msixVectors = 64
                return MemoryBARDevice(options: options)
            },
            run: MSIXLoopbackTest.run),
        SampleProgram(
            name: EduIMSSelfTest.name,
            summary: "IMS on QEMU's edu device: thousands of slots, message writes by edu DMA through the IOMMU, edu's MSI as doorbell",
            simulatedDevice: { EduDevice() }, run: EduIMSSelfTest.run),
        SampleProgram(
            name: IMSQueueDriver.name,
            summary: "the simulated IMS multi-queue device: queues with their own IMS slots, work and completions",
            simulatedDevice: { IMSQueueDevice() }, run: IMSQueueSelfTest.run),
    ]

    static func named(_ name: String) -> SampleProgram? { all.first { $0.name == name } }
}

/// A mock kernel with one simulated device, set up for the requested backend.
struct SimulatedMachine {
    let kernel: MockKernel
    let address: PCIAddress
    /// The device's side of the machine, for code that plays the device.
    let bus: DeviceBus

    /// Plugs `device` at 0000:00:04.0 bound to `driver` (default: the backend's own).
    init(_ device: any SimulatedDevice, backend: Backend, driver: DriverBinding? = nil) throws {
        var configuration = MockKernel.Configuration()
        configuration.noIOMMU = backend == .noIOMMU
        kernel = MockKernel(configuration: configuration)
        address = try PCIAddress(domain: 0, bus: 0, device: 4, function: 0)
        bus = try kernel.plug(device, at: address, driver: driver ?? (backend == .uio ? .uioPCIGeneric : .vfioPCI))
    }
}
