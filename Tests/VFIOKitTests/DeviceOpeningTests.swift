import PCI
import Testing
import VFIOKit
import VFIOMock

/// `PCIDevice.open` on each explicit backend, and every way an open can be refused.
/// (`.auto` and `VFIOKIT_BACKEND` are in ``BackendResolutionTests``, which owns the environment.)
@Suite struct DeviceOpeningTests {
    @Test(arguments: Backend.explicit)
    func opensOnEachBackendAndReachesTheDevice(_ backend: Backend) throws {
        let (_, _, device) = try MockMachine.opening(Devices.edu(), on: backend)
        defer { device.close() }
        #expect(device.backend == backend)
        #expect(device.dma.translates == backend.translatesDMA)
        #expect(try device.readConfig(UInt16.self, at: 0x00) == 0x1234)
        #expect(try device.readConfig(UInt16.self, at: 0x02) == 0x11e8)
        #expect(try device.bar(0).read(UInt32.self, at: 0x00) == 0x0100_00ed)
        #expect(try device.bar(0).size == 1 << 20)
    }

    @Test(arguments: Backend.explicit)
    func anAbsentDeviceIsNoSuchDevice(_ backend: Backend) throws {
        let machine = MockMachine(for: backend)
        try machine.kernel.plug(Devices.edu(), at: MockMachine.primary)
        let missing = pciAddress("0000:07:00.0")
        #expect(throws: VFIOError.noSuchDevice(missing)) {
            try PCIDevice.open(missing, backend: backend, system: machine.kernel)
        }
        #expect(machine.kernel.openFileCount == 0)
    }

    @Test func aDeviceOnAKernelDriverIsWrongDriverNamingBoth() throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.edu(), at: MockMachine.primary, driver: .kernel("e1000e"))
        let error = #expect(throws: VFIOError.wrongDriver(MockMachine.primary, driver: "e1000e", needed: "vfio-pci")) {
            try PCIDevice.open(MockMachine.primary, backend: .legacy, system: machine.kernel)
        }
        #expect(error?.description.contains("vfiokit bind 0000:01:00.0") == true)
        #expect(machine.kernel.openFileCount == 0)
    }

    @Test func anUnboundDeviceIsWrongDriverWithNoDriver() throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.edu(), at: MockMachine.primary, driver: .none)
        #expect(throws: VFIOError.wrongDriver(MockMachine.primary, driver: nil, needed: "vfio-pci")) {
            try PCIDevice.open(MockMachine.primary, backend: .iommufd, system: machine.kernel)
        }
    }

    @Test func uioNeedsUIOPCIGenericAndVFIONeedsVFIOPCI() throws {
        let machine = MockMachine()
        let uioBound = pciAddress("0000:02:00.0")
        try machine.kernel.plug(Devices.edu(), at: MockMachine.primary)
        try machine.kernel.plug(Devices.edu(), at: uioBound, driver: .uioPCIGeneric)
        let error = #expect(throws: VFIOError.wrongDriver(MockMachine.primary, driver: "vfio-pci", needed: "uio_pci_generic")) {
            try PCIDevice.open(MockMachine.primary, backend: .uio, system: machine.kernel)
        }
        #expect(error?.description.contains("--driver uio_pci_generic") == true)
        #expect(throws: VFIOError.wrongDriver(uioBound, driver: "uio_pci_generic", needed: "vfio-pci")) {
            try PCIDevice.open(uioBound, backend: .legacy, system: machine.kernel)
        }
        #expect(machine.kernel.openFileCount == 0)
    }

    /// A kernel without one backend's interface (iommufd, or the legacy container) refuses
    /// that backend by name, leaves nothing open, and still opens the device through the other.
    @Test(arguments: [(Backend.iommufd, Backend.legacy), (.legacy, .iommufd)])
    func aBackendIsUnavailableWithoutItsKernelInterface(_ missing: Backend, _ other: Backend) throws {
        let machine = MockMachine {
            if missing == .iommufd { $0.iommufdAvailable = false } else { $0.legacyContainerAvailable = false }
        }
        try machine.kernel.plug(Devices.edu(), at: MockMachine.primary)
        let error = #expect(throws: VFIOError.self) {
            try PCIDevice.open(MockMachine.primary, backend: missing, system: machine.kernel)
        }
        guard case .backendUnavailable(missing, _)? = error else {
            Issue.record("expected backendUnavailable(.\(missing)), got \(String(describing: error))")
            return
        }
        #expect(machine.kernel.openFileCount == 0)
        let device = try PCIDevice.open(MockMachine.primary, backend: other, system: machine.kernel)
        device.close()
    }

    @Test func noIOMMUIsUnavailableOnAKernelWithAnIOMMU() throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.edu(), at: MockMachine.primary)
        let error = #expect(throws: VFIOError.self) {
            try PCIDevice.open(MockMachine.primary, backend: .noIOMMU, system: machine.kernel)
        }
        guard case .backendUnavailable(.noIOMMU, let reason)? = error else {
            Issue.record("expected backendUnavailable(.noIOMMU), got \(String(describing: error))")
            return
        }
        #expect(reason.contains("enable_unsafe_noiommu_mode"))
        #expect(machine.kernel.openFileCount == 0)
    }

    @Test func legacyIsUnavailableOnANoIOMMUKernel() throws {
        let machine = MockMachine { $0.noIOMMU = true }
        try machine.kernel.plug(Devices.edu(), at: MockMachine.primary)
        let error = #expect(throws: VFIOError.self) {
            try PCIDevice.open(MockMachine.primary, backend: .legacy, system: machine.kernel)
        }
        guard case .backendUnavailable(.legacy, _)? = error else {
            Issue.record("expected backendUnavailable(.legacy), got \(String(describing: error))")
            return
        }
        #expect(machine.kernel.openFileCount == 0)
    }

    @Test(arguments: [Backend.legacy, .iommufd])
    func aDeviceAlreadyOpenCannotBeOpenedAgainAndTheRefusalLeaksNothing(_ second: Backend) throws {
        let (machine, _, first) = try MockMachine.opening(Devices.edu(), on: .legacy)
        let filesWhileOpen = machine.kernel.openFileCount
        #expect(throws: VFIOError.self) {
            try PCIDevice.open(MockMachine.primary, backend: second, system: machine.kernel)
        }
        #expect(machine.kernel.openFileCount == filesWhileOpen)
        // The first opener is unaffected.
        #expect(try first.bar(0).read(UInt32.self, at: 0x00) == 0x0100_00ed)
        first.close()
    }
}
