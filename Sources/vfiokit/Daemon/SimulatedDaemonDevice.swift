import PCI
import VFIODrivers
import VFIOKit
import VFIOMock

/// The devices `vfiokit run` hosts when it is given none: simulated IMS multi-queue devices on
/// the mock kernel, whose driver submits work to every queue in a loop, so that IMS interrupts
/// and completions flow.
enum SimulatedDaemonDevice {
    static let name = IMSQueueDriver.name

    /// `count` addresses from 0000:00:04.0 on, one device each.
    static func addresses(count: Int) -> [PCIAddress] {
        (0..<count).map { try! PCIAddress(domain: 0, bus: 0, device: UInt8(4 + $0), function: 0) }
    }

    /// A mock kernel with a device plugged at each address, each in an IOMMU group of its own,
    /// on `pci-stub` when the daemon is to bind them itself (so that each has an original driver
    /// to give back), else already on its userspace driver.
    static func machine(_ addresses: [PCIAddress], backend: Backend, bind: Bool) throws -> MockKernel {
        var configuration = MockKernel.Configuration()
        configuration.noIOMMU = backend == .noIOMMU
        let kernel = MockKernel(configuration: configuration)
        let driver: DriverBinding = bind ? .pciStub : (backend == .uio ? .uioPCIGeneric : .vfioPCI)
        for address in addresses { try kernel.plug(IMSQueueDevice(), at: address, driver: driver) }
        return kernel
    }

    /// What the mock kernel holds after shutdown, a line per device: proof that nothing was left behind.
    static func aftermath(_ kernel: MockKernel, _ addresses: [PCIAddress]) -> String {
        addresses.map { address in
            let state = kernel.interruptState(of: address)
            let driver = try? kernel.readLink(SysfsLayout.absolute(SysfsLayout.device(address, .driver)))
            let irqs = state.map { $0.kind == .none && !$0.reqArmed ? "none enabled" : "\($0.kind) still enabled" } ?? "none enabled"
            return "simulated kernel after shutdown: \(kernel.dmaMappings(of: address).count) DMA mappings, interrupts \(irqs), "
                + "\(kernel.openFileCount) open files, driver \(driver.map { String($0.split(separator: "/").last ?? "") } ?? "none"), device \(address)"
        }.joined(separator: "\n")
    }
}
