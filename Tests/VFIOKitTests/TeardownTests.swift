import PCI
import Testing
import VFIOKit
import VFIOMock

/// Nothing is left behind: after `close()`, after a refused open, and when a device is simply
/// dropped, the mock kernel holds no file, mapping or interrupt of ours, and the device opens again.
@Suite struct TeardownTests {
    /// Uses the device the way a driver does: a mapped BAR, interrupts, bus mastering.
    func exercise(_ device: PCIDevice, on backend: Backend) throws {
        try device.bar(0).write(UInt32(0xabcd), at: 0x40)
        _ = try device.readConfigSpace()
        try device.setBusMaster(true)
        if backend == .uio {
            _ = try device.interrupts.enable(.intx)
        } else {
            _ = try device.interrupts.enable(.msix, vectors: 4)
            _ = try device.interrupts.enable(.req)
        }
    }

    @Test(arguments: Backend.explicit)
    func closeReleasesEverythingAndTheDeviceOpensAgain(_ backend: Backend) throws {
        let machine = MockMachine(for: backend)
        let model = Devices.memory(msix: 4)
        try machine.kernel.plug(model, at: MockMachine.primary, driver: backend == .uio ? .uioPCIGeneric : .vfioPCI)
        let baseline = machine.kernel.openFileCount
        let bus = try #require(model.bus)

        let device = try PCIDevice.open(MockMachine.primary, backend: backend, system: machine.kernel)
        var memory: [UnsafeMutableRawPointer] = []
        do {
            let a = try device.dma.allocate(1024)
            let b = try device.dma.allocate(1024)
            let c = try device.dma.allocate(1024)
            memory = [a.bytes.baseAddress!, b.bytes.baseAddress!, c.bytes.baseAddress!]
            try exercise(device, on: backend)
            #expect(machine.kernel.openFileCount > baseline)
            if backend.translatesDMA { #expect(machine.kernel.dmaMappings(of: MockMachine.primary).count == 3) }
            device.close()
            #expect(machine.kernel.openFileCount == baseline)
            #expect(machine.kernel.dmaMappings(of: MockMachine.primary).isEmpty)
            // Live buffers keep their memory, which the device can no longer reach.
            for p in memory { #expect(machine.kernel.physicalAddress(of: p) != nil) }
        }
        for p in memory { #expect(machine.kernel.physicalAddress(of: p) == nil) }
        #expect(!bus.busMasterEnabled)
        #expect(!bus.msixEnabled)
        if backend != .uio {
            let state = try #require(machine.kernel.interruptState(of: MockMachine.primary))
            #expect(state.kind == .none && state.enabledVectors.isEmpty && !state.reqArmed)
        }
        #expect(device.interrupts.sources(.msix).isEmpty && device.interrupts.sources(.intx).isEmpty)

        device.close()  // a second close does nothing
        #expect(machine.kernel.openFileCount == baseline)

        let again = try PCIDevice.open(MockMachine.primary, backend: backend, system: machine.kernel)
        #expect(try again.bar(0).read(UInt32.self, at: 0x40) == 0xabcd)  // BAR memory is the device's
        try exercise(again, on: backend)
        again.close()
        #expect(machine.kernel.openFileCount == baseline)
    }

    @Test(arguments: Backend.explicit)
    func droppingAnOpenDeviceClosesIt(_ backend: Backend) throws {
        let machine = MockMachine(for: backend)
        try machine.kernel.plug(Devices.memory(msix: 4), at: MockMachine.primary, driver: backend == .uio ? .uioPCIGeneric : .vfioPCI)
        func useAndDrop() throws {
            let device = try PCIDevice.open(MockMachine.primary, backend: backend, system: machine.kernel)
            let buffer = try device.dma.allocate(1024)
            try exercise(device, on: backend)
            _ = buffer.deviceAddress
        }
        try useAndDrop()
        #expect(machine.kernel.openFileCount == 0)
        #expect(machine.kernel.dmaMappings(of: MockMachine.primary).isEmpty)
        try useAndDrop()
        #expect(machine.kernel.openFileCount == 0)
    }

    @Test(arguments: [Backend.legacy, .iommufd])
    func aRefusedOpenLeavesTheGroupFree(_ backend: Backend) throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.memory(), at: MockMachine.primary, iommuGroup: 5)
        try machine.kernel.plug(Devices.memory(), at: MockMachine.sibling, iommuGroup: 5, driver: .kernel("snd_hda_intel"))
        let error = #expect(throws: VFIOError.groupNotViable(group: 5, MockMachine.primary)) {
            _ = try PCIDevice.open(MockMachine.primary, backend: backend, system: machine.kernel)
        }
        #expect(error?.description.contains("--whole-group") == true)
        #expect(machine.kernel.openFileCount == 0)
        // Neither the group nor the cdev was left claimed: the group file opens (it would be
        // EBUSY while open elsewhere or while a cdev of the group is bound).
        let group = try machine.kernel.open("/dev/vfio/5", 2)
        try machine.kernel.close(group)
        #expect(throws: VFIOError.groupNotViable(group: 5, MockMachine.primary)) {
            _ = try PCIDevice.open(MockMachine.primary, backend: backend, system: machine.kernel)
        }
        #expect(machine.kernel.openFileCount == 0)
    }

    @Test func aRefusedBackendLeavesNothingOpenAndAnotherBackendWorks() throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.memory(), at: MockMachine.primary)
        // The container opens before no-IOMMU mode is found missing.
        #expect(throws: VFIOError.self) { _ = try PCIDevice.open(MockMachine.primary, backend: .noIOMMU, system: machine.kernel) }
        #expect(machine.kernel.openFileCount == 0)
        let device = try PCIDevice.open(MockMachine.primary, backend: .legacy, system: machine.kernel)
        device.close()
        #expect(machine.kernel.openFileCount == 0)
    }

    @Test(arguments: [Backend.legacy, .iommufd])
    func closingWithHandlersOnARunningLoopIsSafe(_ backend: Backend) throws {
        let machine = MockMachine()
        let device = try machine.open(Devices.memory(msix: 4), on: backend)
        let loop = try machine.startedLoop()
        let arrivals = Arrivals<Int>()
        var registrations = EventLoop.Registrations()
        for source in try device.interrupts.enable(.msix, vectors: 4) {
            registrations.append(try loop.register(source) { _ in arrivals.record(source.vector) })
        }
        try device.interrupts.trigger(.msix, vector: 3)
        #expect(arrivals.wait(for: 1) == [3])
        device.close()
        loop.stop()
        #expect(machine.kernel.openFileCount == 0)
        #expect(arrivals.all == [3])
        registrations.end()  // closing ended them already: nothing left to do
    }
}
