#if canImport(Glibc)
import Glibc
#endif
import TestSupport
import Testing
import VFIODrivers
import VFIOKit
import VFIOMock

/// The edu driver handed over and adopted by a new instance in this process, the files kept
/// open as a successor process would receive them: no reset, the same DMA, interrupts flowing;
/// and a record that cannot be believed ends in a reset and a working device.
@Suite struct EduAdoptionTests {
    static let translating: [Backend] = [.legacy, .iommufd]
    let address = MockMachine.primary

    /// A machine with edu open on `backend`, a started loop, and a driver that did 8 exercises
    /// (the eighth a DMA round trip, so it holds its work buffer), then handed the device over.
    struct HandedOver {
        let machine: MockMachine
        let bus: DeviceBus
        let device: PCIDevice
        let loop: EventLoop
        var handOver: DeviceHandOver
        let resets: Int
        let mappings: [IOMMUMapping]
        let logs = CapturedLogs()

        init(_ backend: Backend) throws {
            machine = MockMachine(for: backend)
            bus = try machine.kernel.plug(Devices.edu(), at: MockMachine.primary)
            device = try PCIDevice.open(MockMachine.primary, backend: backend, system: machine.kernel, logger: logs.logger())
            loop = try machine.startedLoop()
            let (first, outcome) = try EduDriver.adoptOrStart(device: device, loop: loop, from: nil)
            #expect(outcome == .reset(because: "no driver state record was handed over"))
            for _ in 0..<8 { try first.exercise() }
            resets = machine.kernel.deviceResets(of: MockMachine.primary)
            mappings = machine.kernel.dmaMappings(of: MockMachine.primary)
            handOver = DeviceHandOver(address: MockMachine.primary)
            try first.handOver(into: &handOver)
            first.stop()  // after a hand-over it leaves the device alone
        }

        func close() {
            loop.stop()
            device.close()
        }
    }

    @Test(arguments: translating)
    func anAdoptedEduKeepsItsDMAAndInterruptsWithoutAReset(_ backend: Backend) throws {
        let rig = try HandedOver(backend)
        defer { rig.close() }
        let kernel = rig.machine.kernel
        #expect(rig.mappings.count == 1)
        let piece = try #require(rig.handOver.pieces.first)
        #expect(rig.handOver.pieces.count == 1 && piece.deviceAddress == rig.mappings[0].iova)
        // While no driver runs it, the device is as the driver left it, its files open.
        #expect(rig.bus.busMasterEnabled && rig.bus.msiEnabled && kernel.isDeviceOpen(address))
        #expect(kernel.interruptState(of: address)?.kind == .msi)
        // The round trip's result is in the handed-over memory: the second half copies the first.
        let view = try kernel.mmap(length: piece.length, protection: PROT_READ, flags: MAP_SHARED, fd: piece.file, offset: 0)
        let bytes = UnsafeRawBufferPointer(start: view, count: piece.length)
        let half = piece.length / 2
        #expect(bytes[0..<64].elementsEqual(bytes[half..<half + 64]) && bytes[0..<64].contains { $0 != 0 })
        try kernel.munmap(view, length: piece.length)

        let (driver, outcome) = try EduDriver.adoptOrStart(device: rig.device, loop: rig.loop, from: rig.handOver)
        defer { driver.stop() }
        #expect(outcome == .adopted && outcome.description == "adopted, no reset")
        // The log says which happened, for which device and driver.
        let said = rig.logs.all.filter { $0.metadata["driver"] == "edu" }.map {
            "\($0.level) \($0.message) \($0.metadata["device"] ?? "-")"
        }
        #expect(said == ["notice reset, because no driver state record was handed over \(address)", "notice adopted, no reset \(address)"])
        #expect(kernel.deviceResets(of: address) == rig.resets)
        #expect(kernel.dmaMappings(of: address) == rig.mappings)
        #expect(rig.device.dma.handedOver.isEmpty)
        // Interrupts still deliver, to the new instance.
        #expect(try driver.factorial(10) == 3_628_800)
        try driver.raiseInterrupt(0x40)
        // Its count went on from 8: the 16th exercise round-trips through the adopted buffer,
        // at the same IOVA (no new mapping was made).
        for _ in 0..<8 { try driver.exercise() }
        #expect(driver.activity.operations == 8)
        #expect(kernel.dmaMappings(of: address) == rig.mappings)
        #expect(kernel.deviceResets(of: address) == rig.resets)
        #expect(kernel.dmaFaults.isEmpty)
    }

    @Test(arguments: translating)
    func aDamagedRecordEndsInAResetAndAWorkingDevice(_ backend: Backend) throws {
        var rig = try HandedOver(backend)
        defer { rig.close() }
        rig.handOver.record![rig.handOver.record!.count - 6] ^= 0x10
        let (driver, outcome) = try EduDriver.adoptOrStart(device: rig.device, loop: rig.loop, from: rig.handOver)
        defer { driver.stop() }
        guard case .reset(let reason) = outcome else {
            Issue.record("adopted from a damaged record")
            return
        }
        #expect(reason.hasPrefix("the record's CRC-32C is 0x") && reason.hasSuffix("it was damaged"))
        #expect(outcome.description.hasPrefix("reset, because the record's CRC-32C"))
        #expect(rig.logs.all.last?.message == outcome.description)
        #expect(rig.machine.kernel.deviceResets(of: address) == rig.resets + 1)
        // What the predecessor left is gone; the fresh driver works.
        #expect(rig.device.dma.handedOver.isEmpty && rig.machine.kernel.dmaMappings(of: address).isEmpty)
        #expect(try driver.factorial(5) == 120)
        for _ in 0..<8 { try driver.exercise() }
    }

    @Test(arguments: translating)
    func aRecordThatDoesNotDescribeTheDeviceEndsInAReset(_ backend: Backend) throws {
        let rig = try HandedOver(backend)
        defer { rig.close() }
        // Someone disabled the interrupt the record relies on.
        try rig.device.interrupts.disable(.msi)
        let (driver, outcome) = try EduDriver.adoptOrStart(device: rig.device, loop: rig.loop, from: rig.handOver)
        defer { driver.stop() }
        #expect(outcome == .reset(because: "the edu record does not match the device: the device has no MSI vector enabled"))
        #expect(rig.machine.kernel.deviceResets(of: address) == rig.resets + 1)
        #expect(try driver.factorial(6) == 720)
    }

    /// Another driver's record, another device's, or one from a newer edu driver: each is
    /// refused by name, and the device is reset.
    @Test(arguments: ["driver", "device", "version"])
    func aForeignRecordEndsInAReset(_ what: String) throws {
        let rig = try HandedOver(.legacy)
        defer { rig.close() }
        var foreign = rig.handOver
        let expected: String
        switch what {
        case "driver":
            foreign.record = DriverStateRecord(driver: "ims-queue", stateVersion: 1, payload: []).encoded()
            expected = "the record is the ims-queue driver's, not the edu driver's"
        case "device":
            foreign.address = MockMachine.sibling
            expected = "the edu record does not match the device: it was handed over for \(MockMachine.sibling), not \(address)"
        default:
            var record = try DriverStateRecord(decoding: rig.handOver.record!)
            record.stateVersion = EduDriver.stateVersion + 1
            foreign.record = record.encoded()
            expected = "the edu state version 2 is from the future (this driver reads up to 1): was it written by a newer driver?"
        }
        let (driver, outcome) = try EduDriver.adoptOrStart(device: rig.device, loop: rig.loop, from: foreign)
        defer { driver.stop() }
        #expect(outcome == .reset(because: expected))
        #expect(rig.machine.kernel.deviceResets(of: address) == rig.resets + 1)
        #expect(try driver.factorial(4) == 24)
    }

    @Test func aDriverThatCannotBeAdoptedIsReset() throws {
        let rig = try HandedOver(.legacy)
        defer { rig.close() }
        // A driver that cannot be adopted is always started afresh, and says so.
        let (_, stub) = try StubDriver.adoptOrStart(device: rig.device, loop: rig.loop, from: rig.handOver)
        #expect(stub == .reset(because: "the stub driver cannot be adopted"))
    }
}
