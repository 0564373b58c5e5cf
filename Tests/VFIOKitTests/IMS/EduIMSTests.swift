import Testing
import VFIODrivers
import VFIOKit
import VFIOMock

/// The edu IMS proof, the same code as in the VM checks, on the mock.
@Suite struct EduIMSTests {
    @Test(arguments: [Backend.legacy, .iommufd])
    func everyStepChecksOut(_ backend: Backend) throws {
        let machine = MockMachine(for: backend)
        let device = try machine.open(Devices.edu(), on: backend)
        defer { device.close() }
        let loop = try machine.startedLoop()
        defer { loop.stop() }
        let steps = EduIMSSelfTest.run(on: device, loop: loop) { _ in }
        #expect(steps.map(\.name) == ["probe", "domain", "load", "random slots", "masked slots", "msi window refused", "unmapped iova"])
        for step in steps { #expect(step.passed == true, "\(step)") }
        #expect(machine.kernel.dmaFaults.contains { $0.reason == .unmapped && $0.isWrite })
    }

    @Test func withoutMSIThereIsNoDoorbellAndTheStepSaysSo() throws {
        let machine = MockMachine(for: .uio)
        let device = try machine.open(Devices.edu(), on: .uio)
        defer { device.close() }
        let loop = try machine.startedLoop()
        defer { loop.stop() }
        let steps = EduIMSSelfTest.run(on: device, loop: loop) { _ in }
        #expect(steps.count == 1)
        #expect(steps.first?.passed == nil)
    }
}
