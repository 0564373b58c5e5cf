import Testing
import VFIODrivers
import VFIOKit
import VFIOMock

/// The simulated controller seen from below the driver: raw queue entries and doorbells.
@Suite struct NVMeControllerTests {
    /// A CQ of 2 entries holds one completion: the controller leaves commands in the SQ until
    /// the host frees CQ space, and each completion carries the SQ head and the phase it is in.
    @Test func aFullCompletionQueueHoldsBackCompletionsUntilTheHeadMoves() throws {
        let bench = try NVMeTestBench()
        let memory = try bench.device.dma.allocate(8192)
        let sq = memory.bytes.baseAddress!, cq = memory.bytes.baseAddress! + 4096
        try bench.driver.adminCommand(.createCompletionQueue(id: 5, entries: 2, memory: memory.deviceAddress + 4096, vector: nil))
        try bench.driver.adminCommand(.createSubmissionQueue(id: 5, entries: 8, memory: memory.deviceAddress, completionQueue: 5))
        for i in 0..<3 {
            var flush = NVMeCommand.flush(namespaceID: 1)
            flush.commandID = UInt16(40 + i)
            let slot = sq + 64 * i
            slot.storeBytes(of: UInt32(flush.opcode) | UInt32(flush.commandID) << 16, as: UInt32.self)
            slot.storeBytes(of: UInt32(1), toByteOffset: 4, as: UInt32.self)
        }
        let bar = try bench.device.bar(0)
        let sqTail = 0x1000 + 2 * 5 * 4, cqHead = sqTail + 4
        func entry(_ i: Int) -> (cid: UInt16, phase: UInt32, sqHead: UInt32, status: UInt32) {
            let dw2 = (cq + 16 * i).load(fromByteOffset: 8, as: UInt32.self)
            let dw3 = (cq + 16 * i).load(fromByteOffset: 12, as: UInt32.self)
            return (UInt16(truncatingIfNeeded: dw3), (dw3 >> 16) & 1, dw2 & 0xffff, dw3 >> 17)
        }
        try bar.write(UInt32(3), at: sqTail)
        // One completion fits; the phase of the first pass is 1.
        #expect(entry(0) == (40, 1, 1, 0))
        #expect(entry(1).phase == 0)
        try bar.write(UInt32(1), at: cqHead)
        #expect(entry(1) == (41, 1, 2, 0))
        #expect(entry(0).cid == 40)
        // The CQ wrapped: the next completion lands in entry 0 with phase 0.
        try bar.write(UInt32(0), at: cqHead)
        #expect(entry(0) == (42, 0, 3, 0))
        try bar.write(UInt32(1), at: cqHead)
        try bench.driver.adminCommand(.deleteQueue(id: 5, submission: true))
        try bench.driver.adminCommand(.deleteQueue(id: 5, submission: false))
    }

    @Test func capabilitiesAndVersionDescribeTheController() throws {
        let bench = try NVMeTestBench(controllerOptions: {
            $0.maxQueueEntries = 64; $0.readyTimeout = 4
        })
        let cap = bench.driver.capabilities
        #expect(cap.maxQueueEntries == 64)
        #expect(cap.readyTimeout == .seconds(2))
        #expect(cap.doorbellStride == 4)
        #expect(cap.contiguousQueuesRequired)
        #expect(cap.minPageSize == 4096 && cap.maxPageSize == 4096)
        #expect(bench.driver.controller?.version == 0x0001_0400)
        // A queue deeper than MQES allows is capped to it.
        #expect(try bench.driver.withQueuePair(0) { (pair) throws(NVMeError) in pair.entries } == 64)
    }
}
