import Testing
import VFIODrivers
import VFIOKit
import VFIOMock

/// `PCIDevice.reset()`: it reaches the device model, device state goes, and the kernel keeps
/// config space and interrupt wiring.
@Suite struct DeviceResetTests {
    @Test(arguments: Backend.vfio)
    func resetReachesTheDeviceModel(_ backend: Backend) throws {
        let (_, model, device) = try MockMachine.opening(Devices.memory(), on: backend)
        defer { device.close() }
        #expect(device.canReset)
        let before = model.resetCount
        try device.reset()
        #expect(model.resetCount == before + 1)
        try device.reset()
        #expect(model.resetCount == before + 2)
    }

    @Test(arguments: Backend.vfio)
    func resetClearsDeviceStateButKeepsConfigAndInterrupts(_ backend: Backend) throws {
        let (machine, _, device) = try MockMachine.opening(Devices.edu(), on: backend)
        defer { device.close() }
        let registers = try device.bar(0).mmio(EduRegisters.self)
        registers.write(EduRegisters.liveness, 0x1234_5678)
        #expect(registers.read(EduRegisters.liveness) == 0xedcb_a987)
        try device.setBusMaster(true)
        try device.writeConfig(UInt8(0x40), at: 0x0d)
        let source = try #require(try device.interrupts.enable(.msi).first)

        try device.reset()
        #expect(registers.read(EduRegisters.liveness) == 0)  // edu's power-on value
        #expect(try device.readConfig(UInt8.self, at: 0x0d) == 0x40)
        #expect(try device.readConfig(UInt16.self, at: 0x04) & 0x4 != 0)
        registers.write(EduRegisters.interruptRaise, 0x2)
        #expect(try machine.takeCount(source) == 1)
    }

    @Test func aDeviceWithoutResetSaysSoAndIsNotReset() throws {
        let machine = MockMachine()
        let model = Devices.memory(reset: false)
        // On the root bus: alone on a child bus it would still have a bus reset.
        let device = try machine.open(model, on: .legacy, at: try PCIAddress(parsing: "0000:00:04.0"))
        defer { device.close() }
        #expect(!device.canReset)
        #expect(throws: VFIOError.self) { try device.reset() }
        #expect(model.resetCount == 0)
    }
}
