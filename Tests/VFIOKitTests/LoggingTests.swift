import Logging
import PCI
import SystemPackage
import TestSupport
import Testing
import VFIOKit
import VFIOMock

/// The framework says what it chose and where it fell back, through the logger it was given.
@Suite struct LoggingTests {
    @Test(arguments: [Backend.legacy, .iommufd, .uio])
    func openingLogsTheBackendAndModeChosen(_ backend: Backend) throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.memory(), at: MockMachine.primary, driver: backend == .uio ? .uioPCIGeneric : .vfioPCI)
        let logs = CapturedLogs()
        let device = try PCIDevice.open(MockMachine.primary, backend: backend, system: machine.kernel, logger: logs.logger())
        defer { device.close() }
        let opened = try #require(logs.all.first { $0.message == "opened device" })
        #expect(opened.level == .info)
        #expect(opened.metadata["device"] == "0000:01:00.0")
        #expect(opened.metadata["backend"] == "\(device.backend)" && device.backend == backend)
        #expect(opened.metadata["mode"] == device.context.mode?.name)
    }

    @Test func aMappingTheKernelRefusesIsLoggedAsAFallbackToPread() throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.memory(), at: MockMachine.primary)
        let logs = CapturedLogs()
        // Every mmap of a device file is refused with EINVAL.
        let refusing = InterposedKernel(machine.kernel) { (call) throws(Errno) in
            if case .mmap(let file?) = call { _ = file; throw .invalidArgument }
        }
        let device = try PCIDevice.open(MockMachine.primary, backend: .legacy, system: refusing, logger: logs.logger())
        defer { device.close() }
        let bar = try device.bar(0)
        #expect(bar.pointer(covering: 0..<4) == nil)
        #expect(try bar.read(UInt32.self, at: 0) == 0)  // served by pread
        let fallback = try #require(logs.all.first { $0.message.contains("mmap refused") })
        #expect(fallback.level == .notice && fallback.metadata["region"] == "0")
    }

    @Test func iommuFaultsAreLoggedAsWarnings() throws {
        let machine = MockMachine()
        let model = Devices.memory()
        try machine.kernel.plug(model, at: MockMachine.primary)
        let logs = CapturedLogs()
        let device = try PCIDevice.open(MockMachine.primary, backend: .iommufd, system: machine.kernel, logger: logs.logger())
        defer { device.close() }
        try device.setBusMaster(true)
        let log = try device.openFaultLog()
        _ = [UInt8](repeating: 1, count: 4).withUnsafeBytes { try! #require(model.bus).dmaWrite(iova: 0x7700_0000, from: $0) }
        #expect(log.newFaults().count == 1)
        #expect(logs.all.contains { $0.level == .warning && $0.message == "IOMMU fault" && $0.metadata["device"] == "0000:01:00.0" })
    }

    @Test(arguments: [true, false])
    func msixGrowthIsLoggedWithHowItWasDone(_ dynamic: Bool) throws {
        let machine = MockMachine { $0.dynamicMSIX = dynamic }
        try machine.kernel.plug(Devices.memory(msix: 8), at: MockMachine.primary)
        let logs = CapturedLogs()
        let device = try PCIDevice.open(MockMachine.primary, backend: .legacy, system: machine.kernel, logger: logs.logger())
        defer { device.close() }
        _ = try device.interrupts.enable(.msix, vectors: 2)
        _ = try device.interrupts.grow(.msix, to: 6)
        let grew = try #require(logs.all.first { $0.message.hasPrefix("grew MSI-X") })
        #expect(grew.message.contains(dynamic ? "while enabled" : "re-enabling"))
        #expect(grew.metadata["from"] == "2" && grew.metadata["to"] == "6")
    }

    @Test func withoutALoggerNothingIsLogged() throws {
        // The default is swift-log's no-op handler: a library nobody configured prints nothing.
        #expect(Logger.vfiokitSilent.handler is SwiftLogNoOpLogHandler)
    }
}
