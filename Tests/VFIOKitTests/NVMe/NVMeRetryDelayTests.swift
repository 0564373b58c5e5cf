import Testing
import VFIODrivers
import VFIOKit
import VFIOMock

/// Command Retry Delay: Advanced Command Retry is enabled (Host Behavior Support) where the
/// controller reports CRDT1–3, again after a reset in place, and a retryable failure whose CRD
/// names one is retried only after that delay.
@Suite struct NVMeRetryDelayTests {
    @Test func aFailureWithCRDIsRetriedAfterItsCRDT() async throws {
        let bench = try NVMeTestBench(
            controllerOptions: { $0.commandRetryDelayTimes = [1, 3, 0] },
            driverOptions: {
                $0.retries = 3; $0.retryBackoff = .milliseconds(1)
            })
        #expect(bench.driver.controller?.commandRetryDelayTimes == [1, 3, 0])
        #expect(bench.controller.advancedCommandRetryEnabled)
        let data = try bench.patterned(4096, seed: 11)
        try await bench.driver.write(lba: 8, blocks: 8, from: data)
        // CRD 2: CRDT2 = 300 ms, where the back-off alone would wait 1 ms.
        bench.controller.injectRetryableError(1, opcode: NVMeCommand.Opcode.read, retryDelay: 2)
        let buffer = try bench.device.dma.allocate(4096)
        let clock = ContinuousClock()
        let start = clock.now
        try await bench.driver.read(lba: 8, blocks: 8, into: buffer)
        let took = clock.now - start
        #expect(Array(buffer.bytes) == Array(data.bytes))
        #expect(bench.controller.errorCount == 1)
        // The owner's coarse clock ticks in 1–4 ms steps.
        #expect(took >= .milliseconds(290), "retried after \(took)")
    }

    @Test func aControllerWithoutCRDTIsNotAskedForRetryDelays() async throws {
        let bench = try NVMeTestBench()
        #expect(bench.driver.controller?.commandRetryDelayTimes == [0, 0, 0])
        #expect(!bench.controller.advancedCommandRetryEnabled)
        // The status then carries no CRD, and the back-off applies.
        bench.controller.injectRetryableError(1, opcode: NVMeCommand.Opcode.read, retryDelay: 3)
        let buffer = try bench.device.dma.allocate(4096)
        try await bench.driver.read(lba: 0, blocks: 8, into: buffer)
        #expect(bench.controller.errorCount == 1)
    }

    @Test func advancedCommandRetryIsEnabledAgainAfterAReset() async throws {
        let bench = try NVMeTestBench(controllerOptions: { $0.commandRetryDelayTimes = [2, 0, 0] })
        #expect(bench.controller.advancedCommandRetryEnabled)
        bench.controller.injectFatalStatus(afterIOCommands: 0)
        let buffer = try bench.device.dma.allocate(4096)
        try await bench.driver.read(lba: 0, blocks: 8, into: buffer)
        #expect(bench.driver.resetCount == 1)
        #expect(bench.controller.advancedCommandRetryEnabled, "the reset cleared ACRE and the driver set it again")
    }
}
