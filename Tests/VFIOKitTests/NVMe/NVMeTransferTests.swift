#if canImport(Glibc)
import Glibc
#endif
import Testing
import VFIODrivers
import VFIOKit
import VFIOMock

/// Data transfers: PRP shapes at their boundaries, queue wrap-around, a full queue, several
/// queues at once, image-backed namespaces.
@Suite struct NVMeTransferTests {
    /// (buffer offset, bytes): PRP1 only, PRP1 + PRP2 with and without an offset, the first
    /// lengths that need a PRP list, and the largest transfer (MDTS 7: 512 KiB).
    static let shapes: [(Int, Int)] = [
        (0, 512), (0, 4096), (3584, 512), (3584, 1024), (512, 4096), (0, 8192), (512, 7680),
        (0, 8192 + 512), (512, 8192), (0, 12288), (0, 512 * 1024), (2048, 512 * 1024 - 2048),
    ]

    @Test(arguments: shapes)
    func transfersOfEveryPRPShapeMoveTheRightBytes(offset: Int, bytes: Int) async throws {
        let bench = try NVMeTestBench(blocks: 4096)
        let blocks = bytes / 512
        let out = try bench.patterned(offset + bytes, seed: UInt8(truncatingIfNeeded: bytes >> 9))
        try await bench.driver.write(lba: 1000, blocks: blocks, from: out, offset: offset)
        #expect(bench.namespace.read(lba: 1000, count: blocks) == Array(out.bytes[offset..<offset + bytes]))
        // The blocks around it are untouched.
        #expect(bench.namespace.read(lba: 999, count: 1) == [UInt8](repeating: 0, count: 512))
        #expect(bench.namespace.read(lba: 1000 + UInt64(blocks), count: 1) == [UInt8](repeating: 0, count: 512))

        let back = try bench.device.dma.allocate(offset + bytes + 4096)
        back.bytes.initializeMemory(as: UInt8.self, repeating: 0xee)
        try await bench.driver.read(lba: 1000, blocks: blocks, into: back, offset: offset)
        #expect(Array(back.bytes[offset..<offset + bytes]) == Array(out.bytes[offset..<offset + bytes]))
        // Nothing is written outside the range the PRPs describe.
        #expect(back.bytes[..<offset].allSatisfy { $0 == 0xee })
        #expect(back.bytes[(offset + bytes)...].allSatisfy { $0 == 0xee })
        #expect(bench.machine.kernel.dmaFaults.isEmpty)
    }

    @Test func aTransferBeyondMDTSIsRefusedBeforeItReachesTheController() async throws {
        let bench = try NVMeTestBench(blocks: 4096)
        #expect(bench.driver.maxTransfer == 512 * 1024)
        let buffer = try bench.device.dma.allocate(1 << 20)
        await #expect(throws: NVMeError.self) { try await bench.driver.read(lba: 0, blocks: 1025, into: buffer) }
        // Built by hand, the controller answers Invalid Field in Command.
        var command = NVMeCommand.readWrite(write: false, namespaceID: 1, lba: 0, blocks: 1025)
        command.prp1 = buffer.deviceAddress
        let error = await #expect(throws: NVMeError.self) { try await bench.driver.submit(command) }
        #expect(error == .failed(command: command.name(admin: false), status: .invalidField))
    }

    @Test func sequentialIOWrapsTheQueuesManyTimes() async throws {
        let bench = try NVMeTestBench(driverOptions: { $0.queueDepth = 4 })
        let out = try bench.patterned(512 * 40, seed: 3)
        for i in 0..<40 { try await bench.driver.write(lba: UInt64(i), blocks: 1, from: out, offset: 512 * i) }
        let back = try bench.device.dma.allocate(512 * 40)
        for i in 0..<40 { try await bench.driver.read(lba: UInt64(i), blocks: 1, into: back, offset: 512 * i) }
        #expect(Array(back.bytes) == Array(out.bytes))
        #expect(bench.namespace.read(lba: 0, count: 40) == Array(out.bytes))
    }

    @Test func aFullQueueRefusesTheNextCommandAndDrainsWhole() throws {
        let bench = try NVMeTestBench(driverOptions: {
            $0.queueDepth = 8; $0.polled = true
        })
        let buffer = try bench.device.dma.allocate(8 * 512)
        try bench.driver.withQueuePair(0) { (pair) throws(NVMeError) in
            for i in 0..<7 {
                try pair.submit(
                    .readWrite(write: false, namespaceID: 1, lba: UInt64(i), blocks: 1),
                    data: NVMeDataRange(buffer, offset: 512 * i, count: 512))
            }
            #expect(pair.outstanding == 7)
            #expect(!pair.canSubmit)
            #expect(throws: NVMeError.queueFull(queue: 1)) {
                try pair.submit(.readWrite(write: false, namespaceID: 1, lba: 7, blocks: 1), data: NVMeDataRange(buffer, count: 512))
            }
            pair.ring()
            var ids: [UInt16] = []
            let n = pair.poll { c in
                #expect(c.succeeded)
                ids.append(c.commandID)
            }
            #expect(n == 7)
            #expect(Set(ids).count == 7)
            #expect(pair.outstanding == 0)
            #expect(!pair.hasCompletion)
        }
    }

    @Test func severalQueuePairsWithTheirOwnVectorsRunAtOnce() async throws {
        let bench = try NVMeTestBench(driverOptions: { $0.queues = 4 })
        #expect(bench.driver.queueCount == 4)
        #expect(bench.controller.ioSubmissionQueues == [1, 2, 3, 4])
        let out = try bench.patterned(64 * 4096, seed: 9)
        let driver = bench.driver
        let ranges = (0..<64).map { NVMeDataRange(out, offset: 4096 * $0, count: 4096)! }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<64 {
                group.addTask { try await driver.write(lba: UInt64(8 * i), blocks: 8, from: ranges[i]) }
            }
            try await group.waitForAll()
        }
        #expect(bench.namespace.read(lba: 0, count: 512) == Array(out.bytes))
        let state = try #require(bench.machine.kernel.interruptState(of: MockMachine.primary))
        #expect(state.kind == .msix)
        #expect(state.enabledVectors.count == 5)
    }

    /// More requests at once than the SQ holds: the owner keeps the rest in its backlog and
    /// submits them as slots free, polled or by interrupt, with no caller retrying.
    @Test(arguments: [false, true])
    func moreRequestsThanTheQueueHoldsWaitInTheOwnersBacklog(polled: Bool) async throws {
        let bench = try NVMeTestBench(driverOptions: {
            $0.queueDepth = 4; $0.polled = polled
        })
        let out = try bench.patterned(200 * 512, seed: 5)
        let driver = bench.driver
        let ranges = (0..<200).map { NVMeDataRange(out, offset: 512 * $0, count: 512)! }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<200 { group.addTask { try await driver.write(lba: UInt64(i), blocks: 1, from: ranges[i]) } }
            try await group.waitForAll()
        }
        #expect(bench.namespace.read(lba: 0, count: 200) == Array(out.bytes))
        #expect(try driver.withQueuePair(0) { (pair) throws(NVMeError) in pair.outstanding } == 0)
    }

    @Test func namespacesWith4KiBBlocksAndSeveralNamespaces() async throws {
        let second = NVMeNamespace(blockCount: 256, blockSize: 4096)
        let bench = try NVMeTestBench(blocks: 1024, extra: [second])
        #expect(bench.driver.namespaces.map(\.id) == [1, 2])
        #expect(bench.driver.namespaces.map(\.blockSize) == [512, 4096])
        #expect(bench.driver.namespaces.map(\.size) == [1024, 256])
        let out = try bench.patterned(8192, seed: 1)
        try await bench.driver.write(namespace: 2, lba: 254, blocks: 2, from: out)
        #expect(second.read(lba: 254, count: 2) == Array(out.bytes))
        await #expect(throws: NVMeError.self) { try await bench.driver.write(namespace: 2, lba: 255, blocks: 2, from: out) }
        await #expect(throws: NVMeError.self) { try await bench.driver.read(namespace: 3, lba: 0, blocks: 1, into: out) }
    }

    @Test func anImageBackedNamespaceKeepsDataAcrossControllers() async throws {
        let path = "/tmp/vfiokit-nvme-test-\(UInt32.random(in: 0 ... .max)).img"
        defer { _ = unlink(path) }
        let written: [UInt8]
        do {
            let bench = try NVMeTestBench(extra: [try NVMeNamespace(imageAt: path, createSize: 1 << 20)])
            let out = try bench.patterned(4096, seed: 5)
            written = Array(out.bytes)
            try await bench.driver.write(namespace: 2, lba: 2040, blocks: 8, from: out)
            try await bench.driver.flush(namespace: 2)
        }
        let bench = try NVMeTestBench(extra: [try NVMeNamespace(imageAt: path)])
        #expect(bench.driver.namespaces.last?.size == 2048)
        let back = try bench.device.dma.allocate(4096)
        try await bench.driver.read(namespace: 2, lba: 2040, blocks: 8, into: back)
        #expect(Array(back.bytes) == written)
    }

    @Test func aDoorbellStrideOtherThanFourBytesWorks() async throws {
        let bench = try NVMeTestBench(controllerOptions: { $0.doorbellStride = 2 }, driverOptions: { $0.queues = 2 })
        #expect(bench.driver.capabilities.doorbellStride == 16)
        let out = try bench.patterned(4096, seed: 2)
        for _ in 0..<3 { try await bench.driver.write(lba: 8, blocks: 8, from: out) }
        #expect(bench.namespace.read(lba: 8, count: 8) == Array(out.bytes))
    }
}
