import PCI
import VFIODrivers
import VFIOKit
import VFIOMock

/// The device `vfiokit run` hosts when it is given none: the simulated IMS multi-queue device on
/// the mock kernel, whose driver submits work to every queue in a loop, so that IMS interrupts
/// and completions flow.
enum SimulatedDaemonDevice {
    static let name = IMSQueueDriver.name

    /// A mock kernel with the device plugged, on `pci-stub` when the daemon is to bind it
    /// itself (so that it has an original driver to give back), else already on its
    /// userspace driver.
    static func machine(backend: Backend, bind: Bool) throws -> SimulatedMachine {
        let driver: DriverBinding = bind ? .pciStub : (backend == .uio ? .uioPCIGeneric : .vfioPCI)
        return try SimulatedMachine(IMSQueueDevice(), backend: backend, driver: driver)
    }
}
