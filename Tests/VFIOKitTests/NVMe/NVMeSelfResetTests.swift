import Foundation
import Synchronization
import Testing
import VFIODrivers
import VFIOKit
import VFIOMock

/// A controller that resets itself (CSTS.RDY drops with CFS clear) is reset in place; CSTS
/// reading all ones is given ``NVMeDriver/Configuration/removalGrace`` before the device is
/// taken as removed; the wait for RDY is bounded even where CAP.TO says 0.
@Suite struct NVMeSelfResetTests {
    @Test(arguments: [NVMeController.Options.Processing.synchronous, .thread])
    func aControllerThatResetsItselfIsReinitialisedInPlace(processing: NVMeController.Options.Processing) async throws {
        // A 5 s command timeout: the RDY check finds it, not a timed-out abort.
        let bench = try NVMeTestBench(controllerOptions: { $0.processing = processing }, driverOptions: { $0.commandTimeout = .seconds(5) })
        let data = try bench.patterned(4096, seed: 12)
        try await bench.driver.write(lba: 24, blocks: 8, from: data)
        bench.controller.injectReset(lasting: .milliseconds(300))
        let buffer = try bench.device.dma.allocate(4096)
        try await bench.driver.read(lba: 24, blocks: 8, into: buffer)
        #expect(Array(buffer.bytes) == Array(data.bytes))
        #expect(bench.driver.resetCount == 1)
        #expect(bench.driver.lastResetReason?.contains("CSTS.RDY dropped to 0") == true, "\(bench.driver.lastResetReason ?? "no reset")")
        #expect(bench.controller.ioSubmissionQueues == [1])
        try await bench.waitUntil { bench.controller.outstandingAsyncEventRequests == 4 }
    }

    @Test func anAdminCommandOutstandingWhenTheControllerResetsItselfFailsAtOnce() async throws {
        // A command timeout longer than any wait for this task's turn (blocking suites can hold
        // both cooperative threads of a 2-core machine for minutes), so the held command is
        // still waiting when the reset comes (a timeout would reset the controller and drop
        // it); and only Get Features is held, not a command the driver sends by itself.
        let bench = try NVMeTestBench(driverOptions: { $0.commandTimeout = .seconds(3600) })
        bench.controller.stall(commands: 1, admin: true, opcode: 0x0a)
        let outcome = Mutex<Result<UInt32, NVMeError>?>(nil)
        let driver = bench.driver
        Thread.detachNewThread {
            let result = Result { () throws(NVMeError) in try driver.adminCommand(.getFeature(0x07)) }
            outcome.withLock { $0 = result }
        }
        try await bench.waitUntil { bench.controller.heldCommands == 1 }
        bench.controller.injectReset(lasting: .milliseconds(100))
        try await bench.waitUntil { outcome.withLock { $0 != nil } }
        // Not a timeout after the command timeout: RDY's drop ends the wait.
        #expect(outcome.withLock { $0 } == .failure(.interruptedByReset(command: "Get Features (FID 0x7)")))
        let buffer = try bench.device.dma.allocate(4096)
        try await bench.driver.read(lba: 0, blocks: 8, into: buffer)
        #expect(bench.driver.resetCount == 1)
    }

    @Test func allOnesWithinTheGraceIsNotARemoval() async throws {
        let bench = try NVMeTestBench(driverOptions: {
            $0.commandTimeout = .seconds(5); $0.removalGrace = .seconds(2)
        })
        let data = try bench.patterned(4096, seed: 13)
        try await bench.driver.write(lba: 0, blocks: 8, from: data)
        // Unreachable for 400 ms (registers all ones), then back, reset.
        bench.controller.injectReset(lasting: .milliseconds(500), unreachable: .milliseconds(400))
        let buffer = try bench.device.dma.allocate(4096)
        try await bench.driver.read(lba: 0, blocks: 8, into: buffer)
        #expect(Array(buffer.bytes) == Array(data.bytes))
        #expect(bench.driver.resetCount == 1)
        #expect(bench.driver.lastResetReason?.contains("CSTS.RDY dropped to 0") == true, "\(bench.driver.lastResetReason ?? "no reset")")
    }

    @Test func allOnesPastTheGraceIsARemoval() async throws {
        let bench = try NVMeTestBench(driverOptions: {
            $0.commandTimeout = .seconds(5); $0.removalGrace = .milliseconds(300)
        })
        bench.controller.injectSurpriseRemoval()
        let buffer = try bench.device.dma.allocate(4096)
        let clock = ContinuousClock()
        let start = clock.now
        let error = await #expect(throws: NVMeError.self) { try await bench.driver.read(lba: 0, blocks: 8, into: buffer) }
        let took = clock.now - start
        guard case let .controllerFailed(why) = error else {
            Issue.record("expected controllerFailed, got \(String(describing: error))")
            return
        }
        // Found by the owners' CSTS check (not by the command timeout and a failed abort) …
        #expect(why.contains("reset because CSTS reads all ones"), "\(why)")
        // … once the grace was over.
        #expect(took >= .milliseconds(290), "given up after \(took), within the grace")
    }

    @Test func aZeroCAPTOStillGivesTheControllerTimeToBecomeReady() async throws {
        let bench = try NVMeTestBench(controllerOptions: { $0.readyTimeout = 0 }, driverOptions: { $0.commandTimeout = .seconds(5) })
        bench.controller.injectReset(lasting: .milliseconds(200))
        let buffer = try bench.device.dma.allocate(4096)
        try await bench.driver.read(lba: 0, blocks: 8, into: buffer)
        #expect(bench.driver.resetCount == 1)
    }
}
