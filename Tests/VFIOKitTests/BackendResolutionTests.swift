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

    /// The backend `.auto` chooses for edu plugged at `machine`'s primary address and bound to
    /// `driver` (nothing plugged when nil), with `VFIOKIT_BACKEND` set to `variable`.
    func autoBackend(
        on machine: MockMachine = MockMachine(), plugging driver: DriverBinding? = .vfioPCI, variable: String? = nil
    ) throws -> Backend {
        if let driver { try machine.kernel.plug(Devices.edu(), at: MockMachine.primary, driver: driver) }
        return try withBackendVariable(variable) {
            let device = try PCIDevice.open(MockMachine.primary, backend: .auto, system: machine.kernel)
            defer { device.close() }
            return device.backend
        }
    }

    @Test func prefersIOMMUFDWhenTheKernelHasIt() throws {
        #expect(try autoBackend() == .iommufd)
    }

    @Test func fallsBackToLegacyWithoutIOMMUFD() throws {
        #expect(try autoBackend(on: MockMachine { $0.iommufdAvailable = false }) == .legacy)
    }

    @Test func picksUIOForADeviceBoundToUIOPCIGeneric() throws {
        #expect(try autoBackend(plugging: .uioPCIGeneric) == .uio)
    }

    @Test func picksNoIOMMUForANoIOMMUGroup() throws {
        #expect(try autoBackend(on: MockMachine { $0.noIOMMU = true }) == .noIOMMU)
    }

    @Test func anEmptyVariableMeansAuto() throws {
        #expect(try autoBackend(variable: "") == .iommufd)
    }

    @Test(arguments: [Backend.legacy, .iommufd])
    func theVariableForcesAVFIOBackend(_ forced: Backend) throws {
        #expect(try autoBackend(variable: forced.rawValue) == forced)
    }

    @Test func theVariableForcesNoIOMMUAndUIO() throws {
        #expect(try autoBackend(on: MockMachine { $0.noIOMMU = true }, variable: "noiommu") == .noIOMMU)
        #expect(try autoBackend(plugging: .uioPCIGeneric, variable: "uio") == .uio)
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
        #expect(throws: VFIOError.wrongDriver(MockMachine.primary, driver: "vfio-pci", needed: "uio_pci_generic")) {
            try autoBackend(variable: "uio")
        }
    }

    @Test func aBadValueIsAClearErrorListingTheChoices() throws {
        let machine = MockMachine()
        let error = #expect(throws: VFIOError.self) { try autoBackend(on: machine, variable: "vfio-legacy") }
        guard case .backendUnavailable(.auto, let reason)? = error else {
            Issue.record("expected backendUnavailable(.auto), got \(String(describing: error))")
            return
        }
        #expect(reason.contains("VFIOKIT_BACKEND=vfio-legacy"))
        for choice in ["iommufd", "legacy", "noiommu", "uio"] { #expect(reason.contains(choice)) }
        #expect(machine.kernel.openFileCount == 0)
    }

    @Test func autoOnAnAbsentDeviceIsNoSuchDevice() throws {
        #expect(throws: VFIOError.noSuchDevice(MockMachine.primary)) { try autoBackend(plugging: nil) }
    }

    @Test func autoOnAKernelDriverBoundDeviceIsWrongDriver() throws {
        #expect(throws: VFIOError.wrongDriver(MockMachine.primary, driver: "e1000e", needed: "vfio-pci")) {
            try autoBackend(plugging: .kernel("e1000e"))
        }
    }
}
