import Testing
import VFIODrivers
import VFIOKit
import VFIOMock

/// The NVMe driver against the simulated controller: bring-up, Identify, I/O, shutdown.
@Suite struct NVMeDriverTests {
    @Test func bringUpIdentifiesControllerAndNamespace() throws {
        let bench = try NVMeTestBench(blocks: 8192)
        let identity = try #require(bench.driver.controller)
        #expect(identity.modelNumber == "VFIOKit simulated NVMe")
        #expect(identity.serialNumber == "VFIOKIT-SIM-0001")
        #expect(identity.maxDataTransferExponent == 7)
        #expect(identity.namespaceCount == 1)
        #expect(bench.driver.namespaces.map(\.id) == [1])
        #expect(bench.driver.namespaces.first?.size == 8192)
        #expect(bench.driver.namespaces.first?.blockSize == 512)
        #expect(bench.controller.ioSubmissionQueues == [1])
        #expect(bench.controller.status & 1 == 1)
        // The driver reached its registers and doorbells through the mapping of BAR 0, as on
        // the kernel, and every access faulted into the controller model.
        #expect(try bench.device.bar(0).pointer(covering: 0..<0x1000) != nil)
        #expect(bench.machine.kernel.registerAccessesThroughMappings > 0)
    }

    @Test(arguments: [false, true])
    func writeThenReadRoundTrips(polled: Bool) async throws {
        let bench = try NVMeTestBench(driverOptions: { $0.polled = polled })
        let out = try bench.patterned(8192, seed: 7)
        try await bench.driver.write(lba: 100, blocks: 16, from: out)
        #expect(bench.namespace.read(lba: 100, count: 16) == Array(out.bytes))
        let back = try bench.device.dma.allocate(8192)
        try await bench.driver.read(lba: 100, blocks: 16, into: back)
        #expect(Array(back.bytes) == Array(out.bytes))
        try await bench.driver.flush()
    }
}

/// The controller on its own thread, with BAR 0 mapped as on hardware: doorbells are plain
/// stores the controller thread picks up (relaxed atomics, so ThreadSanitizer sees them too).
@Suite struct NVMeThreadedControllerTests {
    @Test(arguments: [false, true])
    func dataRoundTripsWithTheControllerOnItsOwnThread(polled: Bool) async throws {
        // A generous timeout: this checks data, not speed, and sanitizers and a loaded host slow both threads.
        let bench = try NVMeTestBench(
            controllerOptions: { $0.processing = .thread },
            driverOptions: {
                $0.polled = polled; $0.queues = 2; $0.commandTimeout = .seconds(30)
            })
        #expect(bench.driver.controller?.modelNumber == "VFIOKit simulated NVMe")
        let out = try bench.patterned(64 * 1024, seed: 11)
        let driver = bench.driver
        let ranges = (0..<16).map { NVMeDataRange(out, offset: 4096 * $0, count: 4096)! }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<16 { group.addTask { try await driver.write(lba: UInt64(8 * i), blocks: 8, from: ranges[i]) } }
            try await group.waitForAll()
        }
        let back = try bench.device.dma.allocate(64 * 1024)
        try await bench.driver.read(lba: 0, blocks: 128, into: back)
        #expect(Array(back.bytes) == Array(out.bytes))
        #expect(bench.driver.shutDown())
    }
}
