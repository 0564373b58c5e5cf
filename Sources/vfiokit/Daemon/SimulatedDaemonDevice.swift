import PCI
import VFIOKit
import VFIOMock

/// The device `vfiokit run` hosts when it is given none: a simulated edu device on the mock
/// kernel, whose driver computes factorials in a loop so that interrupts and operations flow.
/// The one place to change when the IMS queue device becomes the default.
enum SimulatedDaemonDevice {
    static let name = "edu"

    /// A mock kernel with the device plugged, on `pci-stub` when the daemon is to bind it
    /// itself (so that it has an original driver to give back), else already on its
    /// userspace driver.
    static func machine(backend: Backend, bind: Bool) throws -> SimulatedMachine {
        let driver: DriverBinding = bind ? .pciStub : (backend == .uio ? .uioPCIGeneric : .vfioPCI)
        return try SimulatedMachine(EduDevice(), backend: backend, driver: driver)
    }
}
