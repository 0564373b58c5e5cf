import Synchronization
import Testing
import VFIODrivers
import VFIOKit
import VFIOMock

/// Log pages and asynchronous events, end to end on the simulated controller.
@Suite struct NVMeHealthTests {
    @Test func theSMARTLogCarriesWhatTheControllerReportsAndCounts() async throws {
        let bench = try NVMeTestBench()
        bench.controller.setHealth { h in
            h.temperature = 321
            h.availableSpare = 87
            h.availableSpareThreshold = 15
            h.percentageUsed = 12
            h.powerCycles = 40
            h.powerOnHours = 9_000
            h.unsafeShutdowns = 3
            h.mediaErrors = 2
        }
        let buffer = try bench.patterned(8 * 4096, seed: 1)
        for lba in stride(from: UInt64(0), to: 64 * 8, by: 64) { try await bench.driver.write(lba: lba, blocks: 64, from: buffer) }
        try await bench.driver.read(lba: 0, blocks: 64, into: buffer)
        let log = try bench.driver.smartLog()
        #expect(log.temperature == 321)
        #expect(log.celsius == 48)
        #expect(log.temperatureSensors[0] == 321)
        #expect(log.availableSpare == 87)
        #expect(log.availableSpareThreshold == 15)
        #expect(log.percentageUsed == 12)
        #expect(log.powerCycles == 40)
        #expect(log.powerOnHours == 9_000)
        #expect(log.unsafeShutdowns == 3)
        #expect(log.mediaErrors == 2)
        #expect(log.criticalWarning == 0)
        #expect(log.hostWriteCommands == 8)
        #expect(log.hostReadCommands == 1)
        // 512 blocks of 512 bytes written: 512 units, reported in thousands rounded up.
        #expect(log.dataUnitsWritten == 1)
        #expect(log.errorLogEntries == 0)
    }

    @Test func theErrorLogRecordsAFailedCommandNewestFirst() async throws {
        let bench = try NVMeTestBench()
        let buffer = try bench.device.dma.allocate(4096)
        bench.controller.injectMediaError(1, opcode: NVMeCommand.Opcode.read)
        await #expect(throws: NVMeError.self) { try await bench.driver.read(lba: 24, blocks: 8, into: buffer) }
        var bad = NVMeCommand.readWrite(write: false, namespaceID: 1, lba: 4090, blocks: 8)
        bad.prp1 = buffer.deviceAddress
        await #expect(throws: NVMeError.self) { try await bench.driver.submit(bad) }
        let entries = try bench.driver.errorLog()
        #expect(entries.map(\.errorCount) == [2, 1])
        #expect(entries[0].status == .lbaOutOfRange)
        #expect(entries[0].lba == 4090)
        #expect(entries[1].status == .unrecoveredReadError)
        #expect(entries[1].status.doNotRetry)
        #expect(entries[1].submissionQueueID == 1)
        #expect(entries[1].namespaceID == 1)
        #expect(entries[1].lba == 24)
        #expect(entries[1].parameterErrorLocation == 0xffff)
        let log = try bench.driver.smartLog()
        #expect(log.errorLogEntries == 2)
        #expect(log.mediaErrors == 1)
        #expect(try bench.driver.errorLog(entries: 1).count == 1)
    }

    @Test func asyncEventRequestsStayOutstandingAndAreReArmed() async throws {
        let bench = try NVMeTestBench()
        try await bench.waitUntil { bench.controller.outstandingAsyncEventRequests == 4 }
        #expect(bench.driver.outstandingEventRequests == 4)
        let seen = Mutex<[NVMeHealthEvent]>([])
        bench.driver.setEventHandler { event in seen.withLock { $0.append(event) } }
        bench.controller.setHealth { $0.availableSpare = 5 }
        bench.controller.raiseCriticalWarning(1)
        try await bench.waitUntil { seen.withLock { $0.count } == 1 }
        let event = try #require(seen.withLock { $0.first })
        #expect(event.event == NVMeAsyncEvent(kind: .smartHealth, information: 2, logPage: 2))
        guard case let .smart(log) = event.detail else {
            Issue.record("expected the SMART log with the event, got \(event.detail)")
            return
        }
        #expect(log.criticalWarning == 1)
        #expect(log.availableSpare == 5)
        #expect(log.criticalWarnings == ["available spare below threshold"])
        // Re-armed: the controller holds four requests again.
        try await bench.waitUntil { bench.controller.outstandingAsyncEventRequests == 4 }
        #expect(bench.driver.recentEvents == [event])
        // Reading the log cleared the event, so a second warning is reported too.
        bench.controller.raiseCriticalWarning(2)
        try await bench.waitUntil { seen.withLock { $0.count } == 2 }
        #expect(seen.withLock { $0[1].event.information } == 1)
    }

    @Test func aNamespaceAttributeChangedEventReadsTheChangedNamespaceList() async throws {
        let bench = try NVMeTestBench(extra: [NVMeNamespace(blockCount: 128)], driverOptions: { $0.polled = true })
        try await bench.waitUntil { bench.controller.outstandingAsyncEventRequests == 4 }
        #expect(bench.driver.namespaces.map(\.id) == [1, 2])
        bench.controller.setNamespace(2, attached: false)
        bench.controller.changeNamespaceAttributes([2])
        try await bench.waitUntil { bench.driver.changedNamespaces != nil }
        #expect(bench.driver.changedNamespaces?.namespaceIDs == [2])
        // The driver rescanned: namespace 2 is gone from its table.
        try await bench.waitUntil { bench.driver.namespaces.map(\.id) == [1] }
        #expect(bench.driver.recentEvents.first?.event.isNamespaceAttributeChanged == true)
        // Reading the list cleared it.
        #expect(try bench.driver.changedNamespaceList().namespaceIDs == [])
    }

    @Test func anUnknownLogPageIsAnsweredWithInvalidLogPage() throws {
        let bench = try NVMeTestBench()
        let error = #expect(throws: NVMeError.self) { try bench.driver.logPage(0x7f, bytes: 512) }
        #expect(error == .failed(command: "Get Log Page (LID 0x7f)", status: .invalidLogPage))
        #expect(throws: NVMeError.self) { try bench.driver.logPage(0x02, bytes: 6) }
    }
}
