import Testing
import VFIODrivers
import VFIOKit
import VFIOMock

/// Injected faults and error statuses: each ends in a typed error naming what happened, never a hang.
@Suite struct NVMeFaultTests {
    @Test func anLBAOutOfRangeIsAnsweredWithItsStatus() async throws {
        let bench = try NVMeTestBench(blocks: 1024)
        let buffer = try bench.device.dma.allocate(4096)
        // The typed call refuses it before the controller sees it …
        await #expect(throws: NVMeError.self) { try await bench.driver.read(lba: 1020, blocks: 8, into: buffer) }
        // … and the controller answers a hand-built one with LBA Out of Range (SCT 0, SC 0x80).
        var command = NVMeCommand.readWrite(write: false, namespaceID: 1, lba: 1020, blocks: 8)
        command.prp1 = buffer.deviceAddress
        let error = await #expect(throws: NVMeError.self) { try await bench.driver.submit(command) }
        #expect(error == .failed(command: "Read (NSID 1, LBA 1020, 8 blocks)", status: .lbaOutOfRange))
        #expect(error?.description.contains("LBA Out of Range (SCT 0x0 generic, SC 0x80)") == true)
    }

    @Test func anUnknownNamespaceIsAnsweredWithItsStatus() async throws {
        let bench = try NVMeTestBench()
        let buffer = try bench.device.dma.allocate(4096)
        var command = NVMeCommand.readWrite(write: true, namespaceID: 7, lba: 0, blocks: 1)
        command.prp1 = buffer.deviceAddress
        let error = await #expect(throws: NVMeError.self) { try await bench.driver.submit(command) }
        #expect(error == .failed(command: "Write (NSID 7, LBA 0, 1 blocks)", status: .invalidNamespace))
        let identify = #expect(throws: NVMeError.self) {
            try bench.driver.adminCommand(.identify(cns: 0, namespaceID: 9, page: buffer.deviceAddress))
        }
        #expect(identify == .failed(command: "Identify (CNS 0)", status: .invalidNamespace))
    }

    @Test func aDMAToAnUnmappedPRPIsAnIOMMUFaultAndADataTransferError() async throws {
        let bench = try NVMeTestBench()
        var command = NVMeCommand.readWrite(write: false, namespaceID: 1, lba: 0, blocks: 8)
        command.prp1 = 0x7f00_0000_0000
        let error = await #expect(throws: NVMeError.self) { try await bench.driver.submit(command) }
        #expect(error == .failed(command: command.name(admin: false), status: .dataTransferError))
        let faults = bench.machine.kernel.dmaFaults
        #expect(faults.map(\.iova) == [0x7f00_0000_0000])
        #expect(faults.first?.reason == .unmapped)
        #expect(faults.first?.isWrite == true)
        // The controller carries on.
        let buffer = try bench.patterned(4096, seed: 4)
        try await bench.driver.write(lba: 0, blocks: 8, from: buffer)
    }

    /// Bounded: the watchdog aborts it (the time limit catches a hang; the suites run in
    /// parallel, under sanitizers too, so the wait itself is not timed).
    @Test(.timeLimit(.minutes(5))) func aCommandThatNeverCompletesIsAbortedWithATimeoutError() async throws {
        let bench = try NVMeTestBench(driverOptions: { $0.commandTimeout = .milliseconds(200) })
        let buffer = try bench.device.dma.allocate(4096)
        bench.controller.stall(commands: 1, opcode: NVMeCommand.Opcode.read)
        let error = await #expect(throws: NVMeError.self) { try await bench.driver.read(lba: 0, blocks: 8, into: buffer) }
        guard case let .timeout(command, _, recovery) = error else {
            Issue.record("expected a timeout, got \(String(describing: error))")
            return
        }
        #expect(command == "Read (NSID 1, LBA 0, 8 blocks)")
        #expect(recovery.contains("aborted"))
        #expect(recovery.contains("Command Abort Requested"))
        #expect(bench.controller.heldCommands == 0)
        // The queue is usable again.
        try await bench.driver.read(lba: 0, blocks: 8, into: buffer)
    }

    @Test func aPolledCommandThatNeverCompletesIsAbortedToo() async throws {
        let bench = try NVMeTestBench(driverOptions: {
            $0.commandTimeout = .milliseconds(200); $0.polled = true
        })
        let buffer = try bench.device.dma.allocate(4096)
        bench.controller.stall(commands: 1, opcode: NVMeCommand.Opcode.write)
        let error = await #expect(throws: NVMeError.self) { try await bench.driver.write(lba: 0, blocks: 8, from: buffer) }
        guard case .timeout = error else {
            Issue.record("expected a timeout, got \(String(describing: error))")
            return
        }
        try await bench.driver.write(lba: 0, blocks: 8, from: buffer)
    }

    @Test func anAdminCommandThatNeverCompletesResetsTheControllerInPlace() async throws {
        let bench = try NVMeTestBench(driverOptions: { $0.commandTimeout = .milliseconds(200) })
        bench.controller.stall(commands: 1, admin: true)
        let error = #expect(throws: NVMeError.self) { try bench.driver.adminCommand(.getFeature(0x07)) }
        guard case let .timeout(command, _, recovery) = error else {
            Issue.record("expected a timeout, got \(String(describing: error))")
            return
        }
        #expect(command == "Get Features (FID 0x7)")
        #expect(recovery.contains("resets the controller"))
        try await bench.waitUntil { bench.driver.resetCount == 1 }
        // The reset dropped the stalled command; the controller serves I/O again, no bring-up needed.
        #expect(bench.controller.heldCommands == 0)
        #expect(bench.controller.ioSubmissionQueues == [1])
        let buffer = try bench.device.dma.allocate(4096)
        try await bench.driver.read(lba: 0, blocks: 1, into: buffer)
        #expect(try bench.driver.adminCommand(.getFeature(0x07)) & 0xffff == 15)
    }

    @Test func aFatalControllerStatusIsRecoveredFromInPlace() async throws {
        let bench = try NVMeTestBench(driverOptions: { $0.commandTimeout = .milliseconds(200) })
        let data = try bench.patterned(4096, seed: 9)
        try await bench.driver.write(lba: 16, blocks: 8, from: data)
        bench.controller.injectFatalStatus()
        #expect(bench.driver.hasFatalStatus)
        let admin = #expect(throws: NVMeError.self) { try bench.driver.adminCommand(.getFeature(0x07)) }
        #expect(admin == .controllerFatal(step: "Get Features (FID 0x7)"))
        // The next read waits out the reset and completes: a delay, not an error.
        let buffer = try bench.device.dma.allocate(4096)
        try await bench.driver.read(lba: 16, blocks: 8, into: buffer)
        #expect(Array(buffer.bytes) == Array(data.bytes))
        #expect(!bench.driver.hasFatalStatus)
        #expect(bench.driver.resetCount == 1)
    }

    @Test func bringUpFailsClearlyWhenTheControllerDoesNotBecomeReady() throws {
        let bench = try NVMeTestBench(controllerOptions: { $0.readyTimeout = 1 })
        bench.driver.shutDown()
        // The controller will not become ready: its admin queue attributes are refused.
        var options = NVMeDriver.Configuration()
        options.adminQueueDepth = 1
        let driver = try NVMeDriver(device: bench.device, loop: bench.loop, configuration: options)
        let error = #expect(throws: NVMeError.self) { try driver.bringUp() }
        #expect(error == .notReady(expected: true, milliseconds: 500))
        #expect(bench.device.dma.mappingCount == 0)
    }
}
