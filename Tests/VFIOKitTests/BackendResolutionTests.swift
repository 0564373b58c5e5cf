#if canImport(Glibc)
import Glibc
#endif
import Testing
import VFIOKit
import VFIOMock

/// `.auto`: what it picks on each kind of kernel and binding, and `VFIOKIT_BACKEND` forcing it.
///
/// The environment is process-wide, so every test that opens with `.auto` lives in this one
/// serialized suite and sets the variable (or its absence) for itself.
@Suite(.serialized) struct BackendResolutionTests {
    /// Runs `body` with `VFIOKIT_BACKEND` set to `value` (unset for nil), restoring it after.
    func withBackendVariable<T>(_ value: String?, _ body: () throws -> T) rethrows -> T {
        let name = Backend.environmentVariable
        let saved = getenv(name).map { String(cString: $0) }
        if let value { setenv(name, value, 1) } else { unsetenv(name) }
        defer { if let saved { setenv(name, saved, 1) } else { unsetenv(name) } }
        return try body()
    }

    /// Opens the machine's primary device with `.auto` and reports the backend chosen.
    func autoBackend(_ machine: MockMachine) throws -> Backend {
        let device = try PCIDevice.open(MockMachine.primary, backend: .auto, system: machine.kernel)
        defer { device.close() }
        return device.backend
    }

    @Test func prefersIOMMUFDWhenTheKernelHasIt() throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.edu(), at: MockMachine.primary)
        #expect(try withBackendVariable(nil) { try autoBackend(machine) } == .iommufd)
    }

    @Test func fallsBackToLegacyWithoutIOMMUFD() throws {
        let machine = MockMachine { $0.iommufdAvailable = false }
        try machine.kernel.plug(Devices.edu(), at: MockMachine.primary)
        #expect(try withBackendVariable(nil) { try autoBackend(machine) } == .legacy)
    }

    @Test func picksUIOForADeviceBoundToUIOPCIGeneric() throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.edu(), at: MockMachine.primary, driver: .uioPCIGeneric)
        #expect(try withBackendVariable(nil) { try autoBackend(machine) } == .uio)
    }

    @Test func picksNoIOMMUForANoIOMMUGroup() throws {
        let machine = MockMachine { $0.noIOMMU = true }
        try machine.kernel.plug(Devices.edu(), at: MockMachine.primary)
        #expect(try withBackendVariable(nil) { try autoBackend(machine) } == .noIOMMU)
    }

    @Test func anEmptyVariableMeansAuto() throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.edu(), at: MockMachine.primary)
        #expect(try withBackendVariable("") { try autoBackend(machine) } == .iommufd)
    }

    @Test(arguments: [Backend.legacy, .iommufd])
    func theVariableForcesAVFIOBackend(_ forced: Backend) throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.edu(), at: MockMachine.primary)
        #expect(try withBackendVariable(forced.rawValue) { try autoBackend(machine) } == forced)
    }

    @Test func theVariableForcesNoIOMMUAndUIO() throws {
        let noIOMMU = MockMachine { $0.noIOMMU = true }
        try noIOMMU.kernel.plug(Devices.edu(), at: MockMachine.primary)
        #expect(try withBackendVariable("noiommu") { try autoBackend(noIOMMU) } == .noIOMMU)
        let uio = MockMachine()
        try uio.kernel.plug(Devices.edu(), at: MockMachine.primary, driver: .uioPCIGeneric)
        #expect(try withBackendVariable("uio") { try autoBackend(uio) } == .uio)
    }

    @Test func theVariableDoesNotOverrideAnExplicitBackend() throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.edu(), at: MockMachine.primary)
        let backend = try withBackendVariable("legacy") { () throws -> Backend in
            let device = try PCIDevice.open(MockMachine.primary, backend: .iommufd, system: machine.kernel)
            defer { device.close() }
            return device.backend
        }
        #expect(backend == .iommufd)
    }

    @Test func aForcedBackendTheDeviceCannotUseIsRefused() throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.edu(), at: MockMachine.primary)
        #expect(throws: VFIOError.wrongDriver(MockMachine.primary, driver: "vfio-pci", needed: "uio_pci_generic")) {
            try withBackendVariable("uio") { try autoBackend(machine) }
        }
    }

    @Test func aBadValueIsAClearErrorListingTheChoices() throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.edu(), at: MockMachine.primary)
        let error = #expect(throws: VFIOError.self) {
            try withBackendVariable("vfio-legacy") { try autoBackend(machine) }
        }
        guard case .backendUnavailable(.auto, let reason)? = error else {
            Issue.record("expected backendUnavailable(.auto), got \(String(describing: error))")
            return
        }
        #expect(reason.contains("VFIOKIT_BACKEND=vfio-legacy"))
        for choice in ["iommufd", "legacy", "noiommu", "uio"] { #expect(reason.contains(choice)) }
        #expect(machine.kernel.openFileCount == 0)
    }

    @Test func autoOnAnAbsentDeviceIsNoSuchDevice() throws {
        let machine = MockMachine()
        #expect(throws: VFIOError.noSuchDevice(MockMachine.primary)) {
            try withBackendVariable(nil) { try autoBackend(machine) }
        }
    }

    @Test func autoOnAKernelDriverBoundDeviceIsWrongDriver() throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.edu(), at: MockMachine.primary, driver: .kernel("e1000e"))
        #expect(throws: VFIOError.wrongDriver(MockMachine.primary, driver: "e1000e", needed: "vfio-pci")) {
            try withBackendVariable(nil) { try autoBackend(machine) }
        }
    }
}
