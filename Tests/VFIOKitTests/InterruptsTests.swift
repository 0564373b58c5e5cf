import Testing
import VFIODrivers
import VFIOKit
import VFIOMock

/// Interrupt kinds on each backend, from the device (or the kernel's loopback trigger) to a
/// handler on the event loop. The mock delivers synchronously, so "not delivered" is checked
/// at once, without waiting.
@Suite struct InterruptsTests {
    @Test(arguments: Backend.vfio)
    func eduRaisesMSI(_ backend: Backend) throws {
        let (machine, _, device) = try MockMachine.opening(Devices.edu(), on: backend)
        defer { device.close() }
        let bar = try device.bar(0)
        let info = try device.interrupts.info(.msi)
        #expect(info.count == 1 && info.flags.contains(.eventfd))
        let source = try #require(try device.interrupts.enable(.msi).first)
        #expect(source.index == .msi && source.vector == 0)
        #expect(machine.kernel.interruptState(of: MockMachine.primary)?.kind == .msi)
        try device.setBusMaster(true)

        try bar.write(UInt32(0x40), at: 0x60)  // raise
        #expect(try machine.takeCount(source) == 1)
        #expect(try bar.read(UInt32.self, at: 0x24) == 0x40)
        try bar.write(UInt32(0x40), at: 0x64)  // acknowledge
        #expect(try machine.takeCount(source) == nil)

        try device.interrupts.disable(.msi)
        #expect(device.interrupts.sources(.msi).isEmpty)
        #expect(machine.kernel.interruptState(of: MockMachine.primary)?.kind == InterruptState.Kind.none)
        try device.interrupts.disable(.msi)  // already off: nothing to do
    }

    @Test(arguments: [Backend.legacy, .iommufd], [false, true])
    func eachMSIXVectorReachesItsOwnHandler(_ backend: Backend, trappedTable: Bool) throws {
        let machine = MockMachine()
        let model = Devices.memory(msix: 8, trappedTable: trappedTable)
        let device = try machine.open(model, on: backend)
        defer { device.close() }
        let loop = try machine.startedLoop()
        defer { loop.stop() }
        let sources = try device.interrupts.enable(.msix, vectors: 8)
        #expect(sources.map(\.vector) == Array(0..<8))
        #expect(Set(sources.map(\.fd)).count == 8)
        #expect(machine.kernel.interruptState(of: MockMachine.primary)?.enabledVectors == Array(0..<8))
        let arrivals = Arrivals<Int>()
        var registrations = EventLoop.Registrations()
        for source in sources {
            registrations.append(try loop.register(source) { _ in arrivals.record(source.vector) })
        }
        for vector in [5, 0, 7, 2, 1, 6, 3, 4] { try device.interrupts.trigger(.msix, vector: vector) }
        #expect(arrivals.wait(for: 8).sorted() == Array(0..<8))

        // The device itself, bus master on: vector 6 only.
        try device.setBusMaster(true)
        try #require(model.bus).signalMSIX(vector: 6)
        #expect(arrivals.wait(for: 9).last == 6)
        #expect(machine.kernel.interruptState(of: MockMachine.primary)?.droppedMessages == 0)
    }

    @Test func dynamicMSIXGrowthLeavesRunningVectorsAlone() throws {
        let machine = MockMachine { $0.dynamicMSIX = true }
        let device = try machine.open(Devices.memory(msix: 8), on: .iommufd)
        defer { device.close() }
        #expect(try device.interrupts.supportsDynamicGrowth(.msix))
        let first = try device.interrupts.enable(.msix, vectors: 2)
        // A message already delivered to vector 0 must survive the growth.
        try device.interrupts.trigger(.msix, vector: 0)
        let added = try device.interrupts.grow(.msix, to: 6)
        #expect(added.map(\.vector) == [2, 3, 4, 5])
        let all = device.interrupts.sources(.msix)
        #expect(all.map(\.vector) == Array(0..<6))
        #expect(all.prefix(2).map(\.fd) == first.map(\.fd))
        let state = try #require(machine.kernel.interruptState(of: MockMachine.primary))
        #expect(state.enabledVectors == Array(0..<6) && state.allocatedVectors == 6)
        #expect(try machine.takeCount(all[0]) == 1)
        for source in all {
            try device.interrupts.trigger(.msix, vector: source.vector)
            #expect(try machine.takeCount(source) == 1)
        }
        #expect(try device.interrupts.grow(.msix, to: 4).isEmpty)  // already has more
        #expect(throws: VFIOError.interruptUnavailable(MockMachine.primary, .msix, requested: 9, available: 8)) {
            try device.interrupts.grow(.msix, to: 9)
        }
        #expect(device.interrupts.sources(.msix).count == 6)
    }

    @Test(arguments: [Backend.legacy, .iommufd])
    func withoutDynamicMSIXGrowingReenablesWithEveryVector(_ backend: Backend) throws {
        let machine = MockMachine { $0.dynamicMSIX = false }
        let device = try machine.open(Devices.memory(msix: 8), on: backend)
        defer { device.close() }
        #expect(try !device.interrupts.supportsDynamicGrowth(.msix))
        #expect(try device.interrupts.info(.msix).flags.contains(.noResize))
        let first = try device.interrupts.enable(.msix, vectors: 2)
        let added = try device.interrupts.grow(.msix, to: 5)
        #expect(added.map(\.vector) == [2, 3, 4])
        let all = device.interrupts.sources(.msix)
        #expect(all.prefix(2).map(\.fd) == first.map(\.fd))
        let state = try #require(machine.kernel.interruptState(of: MockMachine.primary))
        #expect(state.kind == .msix && state.enabledVectors == Array(0..<5) && state.allocatedVectors == 5)
        for source in all {
            try device.interrupts.trigger(.msix, vector: source.vector)
            #expect(try machine.takeCount(source) == 1)
        }
    }

    @Test func growingAnIndexThatIsOffEnablesIt() throws {
        let (machine, _, device) = try MockMachine.opening(Devices.memory(msix: 4), on: .legacy)
        defer { device.close() }
        let sources = try device.interrupts.grow(.msix, to: 3)
        #expect(sources.map(\.vector) == [0, 1, 2])
        #expect(machine.kernel.interruptState(of: MockMachine.primary)?.enabledVectors == [0, 1, 2])
    }

    @Test(arguments: Backend.vfio)
    func intxIsAutomaskedUntilUnmasked(_ backend: Backend) throws {
        let (machine, model, device) = try MockMachine.opening(Devices.memory(), on: backend)
        defer { device.close() }
        let bus = try #require(model.bus)
        let info = try device.interrupts.info(.intx)
        #expect(info.count == 1 && info.flags.contains(.automasked) && info.flags.contains(.maskable))
        let source = try #require(try device.interrupts.enable(.intx).first)

        bus.setINTx(asserted: true)
        #expect(try machine.takeCount(source) == 1)
        #expect(machine.kernel.interruptState(of: MockMachine.primary)?.intxMasked == true)
        // The device quiets and raises again: masked, so nothing arrives.
        bus.setINTx(asserted: false)
        bus.setINTx(asserted: true)
        #expect(try machine.takeCount(source) == nil)
        // Unmasking with the line still up delivers it.
        try device.interrupts.unmask()
        #expect(try machine.takeCount(source) == 1)
        // Quiet, unmasked: the next assertion is delivered at once.
        bus.setINTx(asserted: false)
        try device.interrupts.unmask()
        #expect(machine.kernel.interruptState(of: MockMachine.primary)?.intxMasked == false)
        bus.setINTx(asserted: true)
        #expect(try machine.takeCount(source) == 1)
    }

    @Test func intxCanBeMaskedBySoftware() throws {
        let (machine, model, device) = try MockMachine.opening(Devices.memory(), on: .legacy)
        defer { device.close() }
        let source = try #require(try device.interrupts.enable(.intx).first)
        try device.interrupts.mask()
        try #require(model.bus).setINTx(asserted: true)
        #expect(try machine.takeCount(source) == nil)
        try device.interrupts.unmask()
        #expect(try machine.takeCount(source) == 1)
    }

    @Test func uioDeliversINTxThroughItsOwnFileAndUnmasksThroughConfig() throws {
        let (machine, model, device) = try MockMachine.opening(Devices.memory(), on: .uio)
        defer { device.close() }
        let bus = try #require(model.bus)
        let loop = try machine.startedLoop()
        defer { loop.stop() }
        let source = try #require(try device.interrupts.enable(.intx).first)
        #expect(bus.command & 0x400 == 0)  // enabling unmasks
        let counts = Arrivals<UInt64>()
        let registration = try loop.register(source) { counts.record($0) }

        bus.setINTx(asserted: true)
        #expect(counts.wait(for: 1) == [1])
        #expect(bus.command & 0x400 != 0)  // uio_pci_generic masked the line
        bus.setINTx(asserted: false)
        try device.interrupts.unmask()
        #expect(bus.command & 0x400 == 0)
        bus.setINTx(asserted: true)
        // Each handler run is told one new interrupt, not the kernel's running total.
        #expect(counts.wait(for: 2) == [1, 1])
        bus.setINTx(asserted: false)
        try device.interrupts.unmask()
        bus.setINTx(asserted: true)
        #expect(counts.wait(for: 3) == [1, 1, 1])
        registration.end()
    }

    @Test func uioOffersOnlyINTx() throws {
        let (_, _, device) = try MockMachine.opening(Devices.edu(), on: .uio)
        defer { device.close() }
        #expect(try device.interrupts.info(.msi).count == 0)
        #expect(throws: VFIOError.interruptUnavailable(MockMachine.primary, .msi, requested: 1, available: 0)) {
            try device.interrupts.enable(.msi)
        }
        #expect(throws: VFIOError.interruptUnavailable(MockMachine.primary, .msix, requested: 1, available: 0)) {
            try device.interrupts.enable(.msix)
        }
        #expect(throws: VFIOError.self) { try device.interrupts.trigger(.intx, vector: 0) }
    }

    @Test(arguments: [Backend.legacy, .iommufd])
    func theRemovalRequestReachesItsHandler(_ backend: Backend) throws {
        let machine = MockMachine()
        let device = try machine.open(Devices.edu(), on: backend)
        defer { device.close() }
        let loop = try machine.startedLoop()
        defer { loop.stop() }
        #expect(try device.interrupts.info(.req).count == 1)
        let source = try #require(try device.interrupts.enable(.req).first)
        #expect(machine.kernel.interruptState(of: MockMachine.primary)?.reqArmed == true)
        let requests = Arrivals<UInt64>()
        let registration = try loop.register(source) { requests.record($0) }
        #expect(machine.kernel.requestRemoval(of: MockMachine.primary))
        #expect(requests.wait(for: 1) == [1])
        try device.interrupts.disable(.req)
        #expect(machine.kernel.interruptState(of: MockMachine.primary)?.reqArmed == false)
        #expect(!machine.kernel.requestRemoval(of: MockMachine.primary))
        registration.end()  // disabling ended it already: nothing left to do
    }

    @Test func anAsyncStreamYieldsEachInterrupt() async throws {
        let (machine, _, device) = try MockMachine.opening(Devices.memory(msix: 2), on: .iommufd)
        defer { device.close() }
        let loop = try machine.startedLoop()
        defer { loop.stop() }
        let sources = try device.interrupts.enable(.msix, vectors: 2)
        var second = try loop.stream(sources[1]).makeAsyncIterator()
        try device.interrupts.trigger(.msix, vector: 1)
        #expect(await second.next() == 1)
        try device.interrupts.trigger(.msix, vector: 0)  // another vector's: not in this stream
        try device.interrupts.trigger(.msix, vector: 1)
        #expect(await second.next() == 1)
        #expect(try machine.takeCount(sources[0]) == 1)
    }

    @Test func askingForMoreThanTheDeviceHasIsInterruptUnavailable() throws {
        let (machine, _, memory) = try MockMachine.opening(Devices.memory(msix: 8, pin: 0), on: .legacy)
        defer { memory.close() }
        #expect(throws: VFIOError.interruptUnavailable(MockMachine.primary, .msix, requested: 9, available: 8)) {
            try memory.interrupts.enable(.msix, vectors: 9)
        }
        #expect(throws: VFIOError.interruptUnavailable(MockMachine.primary, .msix, requested: 0, available: 8)) {
            try memory.interrupts.enable(.msix, vectors: 0)
        }
        #expect(throws: VFIOError.interruptUnavailable(MockMachine.primary, .msi, requested: 1, available: 0)) {
            try memory.interrupts.enable(.msi)
        }
        #expect(throws: VFIOError.interruptUnavailable(MockMachine.primary, .intx, requested: 1, available: 0)) {
            try memory.interrupts.enable(.intx)
        }
        #expect(machine.kernel.interruptState(of: MockMachine.primary)?.kind == InterruptState.Kind.none)

        let eduAddress = pciAddress("0000:02:00.0")
        let edu = try machine.open(Devices.edu(), on: .iommufd, at: eduAddress)
        defer { edu.close() }
        #expect(throws: VFIOError.interruptUnavailable(eduAddress, .msi, requested: 2, available: 1)) {
            try edu.interrupts.enable(.msi, vectors: 2)
        }
        #expect(throws: VFIOError.interruptUnavailable(eduAddress, .msix, requested: 1, available: 0)) { try edu.interrupts.enable(.msix) }
        // edu is conventional PCI: vfio-pci has no ERR interrupt for it.
        #expect(try edu.interrupts.info(.err).count == 0)
        #expect(throws: VFIOError.interruptUnavailable(eduAddress, .err, requested: 1, available: 0)) { try edu.interrupts.enable(.err) }
    }

    @Test func aSecondKindWhileOneIsOnIsRefusedAndTheFirstKeepsWorking() throws {
        let (machine, _, device) = try MockMachine.opening(Devices.memory(msix: 4, msi: 2), on: .iommufd)
        defer { device.close() }
        let msi = try device.interrupts.enable(.msi, vectors: 2)
        #expect(throws: VFIOError.interruptKindInUse(MockMachine.primary, requested: .msix, enabled: .msi)) {
            try device.interrupts.enable(.msix, vectors: 4)
        }
        #expect(throws: VFIOError.interruptKindInUse(MockMachine.primary, requested: .intx, enabled: .msi)) {
            try device.interrupts.enable(.intx)
        }
        #expect(device.interrupts.sources(.msix).isEmpty && device.interrupts.sources(.intx).isEmpty)
        let state = try #require(machine.kernel.interruptState(of: MockMachine.primary))
        #expect(state.kind == .msi && state.enabledVectors == [0, 1])
        try device.interrupts.trigger(.msi, vector: 1)
        #expect(try machine.takeCount(msi[1]) == 1)
        // Once MSI is off, MSI-X can be enabled.
        try device.interrupts.disable(.msi)
        #expect(try device.interrupts.enable(.msix, vectors: 4).count == 4)
    }

    @Test func reenablingAnIndexReplacesItsVectors() throws {
        let (machine, _, device) = try MockMachine.opening(Devices.memory(msix: 8), on: .legacy)
        defer { device.close() }
        _ = try device.interrupts.enable(.msix, vectors: 6)
        let again = try device.interrupts.enable(.msix, vectors: 2)
        #expect(device.interrupts.sources(.msix).map(\.fd) == again.map(\.fd))
        #expect(machine.kernel.interruptState(of: MockMachine.primary)?.enabledVectors == [0, 1])
        try device.interrupts.trigger(.msix, vector: 1)
        #expect(try machine.takeCount(again[1]) == 1)
    }
}
