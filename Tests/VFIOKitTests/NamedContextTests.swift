import PCI
import Testing
import VFIOKit
import VFIOMock

/// Named shared contexts (libvfn's `iommu_get_context(name)`) and the one table of IOMMU modes.
@Suite struct NamedContextTests {
    @Test func oneNameIsOneContextAndItsDevicesShareDMA() throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.memory(), at: MockMachine.primary, iommuGroup: 5)
        try machine.kernel.plug(Devices.memory(), at: MockMachine.sibling, iommuGroup: 6)
        let first = try IOMMUContext.named("storage", backend: .legacy, system: machine.kernel)
        defer { first.close() }
        let again = try IOMMUContext.named("storage", system: machine.kernel)
        #expect(first === again)
        let other = try IOMMUContext.named("network", system: machine.kernel)
        defer { other.close() }
        #expect(other !== first)
        let a = try first.open(MockMachine.primary)
        let b = try again.open(MockMachine.sibling)
        #expect(Set(first.devices.map(\.address)) == [a.address, b.address])
        #expect(a.context === b.context)
        // Another kernel (model) has names of its own.
        let elsewhere = MockMachine()
        let foreign = try IOMMUContext.named("storage", system: elsewhere.kernel)
        defer { foreign.close() }
        #expect(foreign !== first)
    }

    @Test func aClosedOrReleasedNamedContextIsMadeAgain() throws {
        let machine = MockMachine()
        let first = try IOMMUContext.named("scratch", system: machine.kernel)
        let firstID = ObjectIdentifier(first)
        first.close()
        let second = try IOMMUContext.named("scratch", system: machine.kernel)
        #expect(ObjectIdentifier(second) != firstID)
        #expect(second.devices.isEmpty)
        second.close()
    }

    @Test func aNameHeldForAnotherBackendIsRefusedWithTheRemedy() throws {
        let machine = MockMachine()
        let context = try IOMMUContext.named("storage", backend: .iommufd, system: machine.kernel)
        defer { context.close() }
        let error = #expect(throws: VFIOError.self) {
            _ = try IOMMUContext.named("storage", backend: .legacy, system: machine.kernel)
        }
        #expect(error?.description.contains("runs on the iommufd backend, not legacy") == true, "\(String(describing: error))")
        #expect(try IOMMUContext.named("storage", backend: .iommufd, system: machine.kernel) === context)
    }

    @Test func everyModeIsFoundByItsNameAndReachesTheIOMMUOneWay() {
        for mode in IOMMUMode.all {
            #expect(IOMMUMode.named(mode.name) == mode)
            // A container route always carries its IOMMU type; the others carry neither.
            #expect((mode.containerPath == nil) == (mode.iommuType == nil), "\(mode)")
        }
        #expect(IOMMUMode.named("vfio_type2_iommu") == nil)
        #expect(IOMMUMode.all.filter(\.isSelftestMode) == Array(IOMMUMode.all.prefix(5)))
        #expect(IOMMUMode.type1v2.route == .container(node: "dev/vfio/vfio", iommuType: 3))
        #expect(IOMMUMode.iommufd.route == .iommufdCDev && IOMMUMode.uio.route == .uio)
        // Each backend a caller can name (the CLI's --backend spellings) maps onto the table.
        #expect(Set(IOMMUMode.all.map(\.backend)) == Set(Backend.allCases.filter { $0 != .auto }))
    }
}
