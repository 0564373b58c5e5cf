import Testing
import VFIODrivers
import VFIOKit
import VFIOMock

/// The edu sample driver, end to end on the mock, on every backend.
@Suite struct EduDriverTests {
    static let allBackends: [Backend] = [.legacy, .iommufd, .noIOMMU, .uio]

    @Test(arguments: allBackends)
    func theSelfTestPassesEveryStepThatApplies(_ backend: Backend) throws {
        let machine = MockMachine(for: backend)
        let device = try machine.open(Devices.edu(), on: backend)
        defer { device.close() }
        let loop = try machine.startedLoop()
        defer { loop.stop() }
        var reported: [String] = []
        let steps = EduSelfTest.run(on: device, loop: loop) { reported.append($0.name) }
        #expect(
            steps.map(\.name) == [
                "probe", "identification", "liveness", "start", "factorial", "interrupt raise/ack",
                "dma round trip", "iommu fault",
            ])
        #expect(reported == steps.map(\.name))
        for step in steps where step.name != "iommu fault" {
            #expect(step.passed == true, "\(step)")
        }
        let fault = try #require(steps.last)
        #expect(fault.passed == (backend.translatesDMA ? true : nil), "\(fault)")
        #expect(steps.first { $0.name == "start" }?.detail.hasPrefix(backend == .uio ? "INTx" : "MSI") == true)
        // Its registers went through the mapping of BAR 0, as on the kernel, each access
        // faulting into the edu model (uio's resource0 maps the same way).
        #expect(try device.bar(0).pointer(covering: 0..<0x100) != nil)
        #expect(machine.kernel.registerAccessesThroughMappings > 0)
        if backend.translatesDMA {
            // The stray DMA the fault step made is the one fault the IOMMU saw.
            #expect(machine.kernel.dmaFaults.map(\.reason) == [.unmapped])
        } else {
            #expect(machine.kernel.dmaFaults.isEmpty)
        }
    }

    @Test(arguments: [Backend.legacy, .iommufd, .noIOMMU])
    func stoppingQuiescesTheDevice(_ backend: Backend) throws {
        let machine = MockMachine(for: backend)
        let bus = try machine.kernel.plug(Devices.edu(), at: MockMachine.primary)
        let device = try PCIDevice.open(MockMachine.primary, backend: backend, system: machine.kernel)
        defer { device.close() }
        let loop = try machine.startedLoop()
        defer { loop.stop() }
        let driver = try EduDriver(device: device, loop: loop)
        // Probing leaves the device as it was.
        #expect(!bus.busMasterEnabled && !bus.msiEnabled)
        try driver.start()
        #expect(driver.interruptKind == .msi)
        #expect(bus.busMasterEnabled && bus.msiEnabled)
        #expect(try driver.factorial(12) == 479_001_600)
        driver.stop()
        #expect(driver.interruptKind == nil)
        #expect(!bus.busMasterEnabled && !bus.msiEnabled)
        #expect(machine.kernel.interruptState(of: MockMachine.primary)?.kind == InterruptState.Kind.none)
        #expect(device.interrupts.sources(.msi).isEmpty)
    }

    @Test func withoutMSIFactorialCompletesOnINTx() throws {
        // UIO offers edu only its INTx line, so the driver falls back to it and unmasks after each.
        let machine = MockMachine()
        let device = try machine.open(Devices.edu(), on: .uio)
        defer { device.close() }
        let loop = try machine.startedLoop()
        defer { loop.stop() }
        let driver = try EduDriver(device: device, loop: loop)
        try driver.start()
        defer { driver.stop() }
        #expect(driver.interruptKind == .intx)
        for n: UInt32 in [0, 1, 5, 10, 12] {
            let expected = (1...max(n, 1)).reduce(UInt32(1)) { $0 * $1 }
            #expect(try driver.factorial(n) == expected)
        }
        try driver.raiseInterrupt(0x7000)
        #expect(driver.interruptStatus == 0)
    }

    @Test(arguments: [Backend.legacy, .iommufd])
    func dmaBeyondTheDevicesMaskIsReportedNotCrashed(_ backend: Backend) throws {
        // The IOMMU offers no IOVA below 2^28, which edu cannot exceed.
        let machine = MockMachine { $0.iovaRanges = [IOVARange(first: 1 << 32, last: (1 << 48) - 1)] }
        let device = try machine.open(Devices.edu(), on: backend)
        defer { device.close() }
        let loop = try machine.startedLoop()
        defer { loop.stop() }
        let steps = EduSelfTest.run(on: device, loop: loop) { _ in }
        let dma = try #require(steps.first { $0.name == "dma round trip" })
        #expect(dma.passed == false)
        #expect(dma.detail.contains("no DMA memory the device can reach"))
        #expect(steps.first { $0.name == "factorial" }?.passed == true)
        #expect(device.dma.mappingCount == 0)
    }

    @Test func theDriverRefusesADeviceThatIsNotEdu() throws {
        let machine = MockMachine()
        let device = try machine.open(Devices.memory(), on: .legacy)
        defer { device.close() }
        let loop = try machine.startedLoop()
        defer { loop.stop() }
        #expect(try !EduDriver.supports(device))
        #expect(throws: EduError.notEdu(device.address)) { _ = try EduDriver(device: device, loop: loop) }
        #expect("\(EduError.notEdu(device.address))".contains("not an edu device"))
        let steps = EduSelfTest.run(on: device, loop: loop) { _ in }
        #expect(steps.map(\.name) == ["probe"] && steps.first?.passed == false)
    }
}
