import Testing
import VFIODrivers
import VFIOKit
import VFIOMock

/// Recovery without an operator: retries bounded by DNR and a count, a dead controller found
/// on the I/O path and reset in place, outstanding requests resubmitted or failed clearly.
@Suite struct NVMeRecoveryTests {
    @Test(arguments: [false, true])
    func aRetryableErrorIsRetriedAndTheCallerSeesOnlyADelay(polled: Bool) async throws {
        let bench = try NVMeTestBench(driverOptions: {
            $0.polled = polled; $0.retries = 3
        })
        let data = try bench.patterned(4096, seed: 3)
        try await bench.driver.write(lba: 8, blocks: 8, from: data)
        bench.controller.injectRetryableError(2, opcode: NVMeCommand.Opcode.read)
        let buffer = try bench.device.dma.allocate(4096)
        try await bench.driver.read(lba: 8, blocks: 8, into: buffer)
        #expect(Array(buffer.bytes) == Array(data.bytes))
        // Both failures were the controller's: it logged them, and the third attempt ran.
        #expect(bench.controller.errorCount == 2)
    }

    @Test func retriesAreBoundedAndTheLastStatusIsReported() async throws {
        let bench = try NVMeTestBench(driverOptions: {
            $0.retries = 2; $0.retryBackoff = .milliseconds(1)
        })
        bench.controller.injectRetryableError(5, opcode: NVMeCommand.Opcode.read)
        let buffer = try bench.device.dma.allocate(4096)
        let error = await #expect(throws: NVMeError.self) { try await bench.driver.read(lba: 0, blocks: 8, into: buffer) }
        #expect(error == .failed(command: "Read (NSID 1, LBA 0, 8 blocks)", status: .namespaceNotReady))
        // One attempt and two retries.
        #expect(bench.controller.errorCount == 3)
    }

    @Test func aMediaErrorWithDoNotRetryFailsAtOnce() async throws {
        let bench = try NVMeTestBench(driverOptions: { $0.retries = 3 })
        bench.controller.injectMediaError(3, opcode: NVMeCommand.Opcode.read)
        let buffer = try bench.device.dma.allocate(4096)
        let error = await #expect(throws: NVMeError.self) { try await bench.driver.read(lba: 0, blocks: 8, into: buffer) }
        #expect(error == .failed(command: "Read (NSID 1, LBA 0, 8 blocks)", status: .unrecoveredReadError))
        #expect(error?.description.contains("Unrecovered Read Error") == true)
        #expect(error?.description.contains("Do Not Retry") == true)
        #expect(bench.controller.errorCount == 1)
    }

    @Test(arguments: [false, true], [NVMeController.Options.Processing.synchronous, .thread])
    func aFatalStatusMidIOIsResetInPlaceAndTheIOCompletes(polled: Bool, processing: NVMeController.Options.Processing) async throws {
        let bench = try NVMeTestBench(
            controllerOptions: {
                $0.processing = processing; $0.ioQueuePairs = 4
            },
            driverOptions: {
                $0.polled = polled; $0.queues = 2; $0.commandTimeout = .seconds(5)
            })
        let data = try bench.patterned(16 * 4096, seed: 5)
        try await bench.driver.write(lba: 0, blocks: 128, from: data)
        bench.controller.injectFatalStatus(afterIOCommands: 3)
        let buffer = try bench.device.dma.allocate(8 * 4096)
        let ranges = (0..<8).compactMap { i in NVMeDataRange(buffer, offset: i * 4096, count: 4096) }
        try #require(ranges.count == 8)
        let driver = bench.driver
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, range) in ranges.enumerated() {
                group.addTask { try await driver.read(lba: UInt64(i * 8), blocks: 8, into: range) }
            }
            try await group.waitForAll()
        }
        #expect(Array(buffer.bytes) == Array(data.bytes[0..<8 * 4096]), "the reads after the reset")
        #expect(bench.driver.resetCount == 1)
        #expect(!bench.driver.hasFatalStatus)
        // Found by an owner's CSTS check, not by the 5 s command timeout and a failed abort.
        #expect(bench.driver.lastResetReason == "the controller reported a fatal status (CSTS.CFS)")
        #expect(bench.controller.ioSubmissionQueues == [1, 2])
        // The queues, the features and the event requests are back.
        try await bench.waitUntil { bench.controller.outstandingAsyncEventRequests == 4 }
        try await bench.driver.write(lba: 200, blocks: 8, from: ranges[0])
    }

    @Test func aWriteOutstandingAtTheResetIsResubmittedAndLands() async throws {
        let bench = try NVMeTestBench()
        bench.controller.injectFatalStatus(afterIOCommands: 0)
        let data = try bench.patterned(4096, seed: 6)
        try await bench.driver.write(lba: 40, blocks: 8, from: data)
        #expect(bench.driver.resetCount == 1)
        let back = try bench.device.dma.allocate(4096)
        try await bench.driver.read(lba: 40, blocks: 8, into: back)
        #expect(Array(back.bytes) == Array(data.bytes))
    }

    @Test func aCommandNotSafeToRepeatFailsClearlyAtTheReset() async throws {
        let bench = try NVMeTestBench()
        bench.controller.injectFatalStatus(afterIOCommands: 0)
        var compare = NVMeCommand(opcode: 0x05)
        compare.namespaceID = 1
        let buffer = try bench.device.dma.allocate(512)
        compare.prp1 = buffer.deviceAddress
        let error = await #expect(throws: NVMeError.self) { try await bench.driver.submit(compare) }
        #expect(error == .interruptedByReset(command: compare.name(admin: false)))
        #expect(error?.description.contains("not safe to repeat") == true)
        try await bench.driver.read(lba: 0, blocks: 1, into: buffer)
    }

    @Test(.timeLimit(.minutes(1)))
    func aControllerThatDoesNotComeBackIsGivenUpOnClearly() async throws {
        let bench = try NVMeTestBench(controllerOptions: { $0.readyTimeout = 1 })
        bench.controller.injectFatalStatus(afterIOCommands: 0, permanent: true)
        let buffer = try bench.device.dma.allocate(4096)
        let error = await #expect(throws: NVMeError.self) { try await bench.driver.read(lba: 0, blocks: 8, into: buffer) }
        guard case let .controllerFailed(why) = error else {
            Issue.record("expected controllerFailed, got \(String(describing: error))")
            return
        }
        #expect(why.contains("did not come back"))
        #expect(why.contains("CSTS.CFS"))
        let later = await #expect(throws: NVMeError.self) { try await bench.driver.read(lba: 0, blocks: 8, into: buffer) }
        guard case .controllerFailed = later else {
            Issue.record("expected controllerFailed, got \(String(describing: later))")
            return
        }
        #expect(bench.driver.resetCount == 0)
    }

    @Test(arguments: [NVMeController.Options.Processing.synchronous, .thread])
    func aControllerWhoseRegistersReadAllOnesIsFoundOnTheIOPath(processing: NVMeController.Options.Processing) async throws {
        let bench = try NVMeTestBench(controllerOptions: { $0.processing = processing }, driverOptions: { $0.commandTimeout = .seconds(5) })
        let buffer = try bench.device.dma.allocate(4096)
        try await bench.driver.read(lba: 0, blocks: 8, into: buffer)
        bench.controller.injectSurpriseRemoval()
        let error = await #expect(throws: NVMeError.self) { try await bench.driver.read(lba: 0, blocks: 8, into: buffer) }
        guard case let .controllerFailed(why) = error else {
            Issue.record("expected controllerFailed, got \(String(describing: error))")
            return
        }
        // Seen by an owner's CSTS check, not after the 5 s command timeout.
        #expect(why.contains("reset because CSTS reads all ones"), "\(why)")
    }

    @Test func aTimedOutCommandThatCannotBeAbortedIsResubmittedAfterAReset() async throws {
        let bench = try NVMeTestBench(driverOptions: { $0.commandTimeout = .seconds(2) })
        let data = try bench.patterned(4096, seed: 7)
        try await bench.driver.write(lba: 0, blocks: 8, from: data)
        // The read is held, and so is the Abort for it: only a reset gets it going again. Both
        // are held from the start, so nothing depends on when this task runs.
        bench.controller.stall(commands: 1, opcode: NVMeCommand.Opcode.read)
        bench.controller.stall(commands: 1, admin: true, opcode: 0x08)
        let buffer = try bench.device.dma.allocate(4096)
        let made = NVMeDataRange(buffer, offset: 0, count: 4096)
        let range = try #require(made)
        try await bench.driver.read(lba: 0, blocks: 8, into: range)
        #expect(Array(buffer.bytes) == Array(data.bytes))
        #expect(bench.driver.resetCount == 1)
        #expect(bench.driver.lastResetReason == "admin command Abort timed out")
    }
}
