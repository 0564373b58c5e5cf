#if canImport(Glibc)
import Glibc
#endif
import Testing
import VFIODrivers
import VFIOKit
import VFIOMock

/// Dataset Management, Write Zeroes, Compare, Write with FUA and Flush against VWC: what the
/// controller advertises, what each command does to the namespace, and refusals.
@Suite struct NVMeDataCommandTests {
    static func imagePath() -> String { "/tmp/vfiokit-nvme-data-\(UInt32.random(in: 0 ... .max)).img" }

    @Test func identifyReportsONCSVWCAndDLFEAT() throws {
        let bench = try NVMeTestBench()
        let c = try #require(bench.driver.controller)
        #expect(c.supportsCompare && c.supportsDatasetManagement && c.supportsWriteZeroes && c.volatileWriteCache)
        #expect(bench.driver.namespaces[0].deallocatedReadsZero && bench.driver.namespaces[0].writeZeroesCanDeallocate)

        let bare = try NVMeTestBench(controllerOptions: {
            $0.optionalCommands = 0x0002  // Write Uncorrectable only
            $0.volatileWriteCache = false
            $0.deallocateFeatures = 0x02  // deallocated blocks read as FFh; no DEAC
        })
        let b = try #require(bare.driver.controller)
        #expect(!b.supportsCompare && !b.supportsDatasetManagement && !b.supportsWriteZeroes && !b.volatileWriteCache)
        #expect(b.optionalCommands == 0x0002)
        #expect(!bare.driver.namespaces[0].deallocatedReadsZero && !bare.driver.namespaces[0].writeZeroesCanDeallocate)
    }

    @Test func commandBuildersSetTheSpecFields() {
        let dsm = NVMeCommand.deallocate(namespaceID: 3, ranges: 256)
        #expect(dsm.opcode == 0x09 && dsm.namespaceID == 3 && dsm.cdw10 == 0xff && dsm.cdw11 == 0x4)
        let wz = NVMeCommand.writeZeroes(namespaceID: 1, lba: 0x1_0000_0002, blocks: 8, deallocate: true, fua: true)
        #expect(wz.opcode == 0x08 && wz.cdw10 == 2 && wz.cdw11 == 1 && wz.cdw12 == 7 | 1 << 25 | 1 << 30)
        #expect(NVMeCommand.writeZeroes(namespaceID: 1, lba: 0, blocks: 1).cdw12 == 0)
        let cmp = NVMeCommand.compare(namespaceID: 1, lba: 5, blocks: 2)
        #expect(cmp.opcode == 0x05 && cmp.cdw10 == 5 && cmp.cdw12 == 1)
        #expect(NVMeCommand.readWrite(write: true, namespaceID: 1, lba: 0, blocks: 1, fua: true).cdw12 == 1 << 30)
        // FUA means nothing to a read.
        #expect(NVMeCommand.readWrite(write: false, namespaceID: 1, lba: 0, blocks: 1, fua: true).cdw12 == 0)
        var range = [UInt8](repeating: 0xaa, count: 16)
        range.withUnsafeMutableBytes { NVMeBlockRange(lba: 0x0102_0304_0506_0708, blocks: 0x10).store(to: $0.baseAddress!) }
        #expect(range == [0, 0, 0, 0, 0x10, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1])
    }

    @Test func deallocatePunchesHolesThatReadAsZeroes() async throws {
        let path = Self.imagePath()
        defer { _ = unlink(path) }
        let image = try NVMeNamespace(imageAt: path, blockSize: 512, createSize: 4 << 20)
        let bench = try NVMeTestBench(extra: [image])
        let out = try bench.patterned(1 << 20, seed: 9)
        for i in 0..<4 { try await bench.driver.write(namespace: 2, lba: UInt64(i) * 1024, blocks: 1024, from: out, offset: 0) }
        try await bench.driver.flush(namespace: 2)
        let before = try #require(image.allocatedBytes)
        #expect(before >= 2 << 20)

        let list = try bench.device.dma.allocate(4096)
        let ranges = [NVMeBlockRange(lba: 1024, blocks: 1024), NVMeBlockRange(lba: 3000, blocks: 72)]
        try await bench.driver.deallocate(namespace: 2, ranges: ranges, list: list, offset: 64)
        #expect(image.read(lba: 1024, count: 1024).allSatisfy { $0 == 0 })
        #expect(image.read(lba: 3000, count: 72).allSatisfy { $0 == 0 })
        // The blocks around each range keep their data.
        #expect(image.read(lba: 1023, count: 1) == Array(out.bytes[1023 * 512..<1024 * 512]))
        #expect(image.read(lba: 2999, count: 1) == Array(out.bytes[(2999 - 2048) * 512..<(3000 - 2048) * 512]))
        #expect(image.read(lba: 3072, count: 1) == Array(out.bytes[0..<512]))
        // The image gave the space back: at least the whole first range.
        let after = try #require(image.allocatedBytes)
        #expect(after <= before - 512 * 1024)
        // And the driver reads zeroes back through the controller.
        let back = try bench.device.dma.allocate(512 * 72)
        back.bytes.initializeMemory(as: UInt8.self, repeating: 0xee)
        try await bench.driver.read(namespace: 2, lba: 3000, blocks: 72, into: back)
        #expect(back.bytes.allSatisfy { $0 == 0 })

        // One range, in memory.
        try await bench.driver.write(lba: 10, blocks: 4, from: out)
        try await bench.driver.deallocate(lba: 11, blocks: 2, list: list)
        #expect(bench.namespace.read(lba: 11, count: 2).allSatisfy { $0 == 0 })
        #expect(bench.namespace.read(lba: 10, count: 1) == Array(out.bytes[0..<512]))
        #expect(bench.namespace.read(lba: 13, count: 1) == Array(out.bytes[1536..<2048]))
    }

    @Test func deallocateRefusesBadRangesAndTheControllerAnswersLBAOutOfRange() async throws {
        let bench = try NVMeTestBench(blocks: 1024)
        let out = try bench.patterned(512, seed: 4)
        try await bench.driver.write(lba: 1000, blocks: 1, from: out)
        let list = try bench.device.dma.allocate(4096)
        let refused = [
            [NVMeBlockRange(lba: 1000, blocks: 25)], [NVMeBlockRange(lba: 0, blocks: 0)], [],
            Array(repeating: NVMeBlockRange(lba: 0, blocks: 1), count: 257),
        ]
        for ranges in refused {
            await #expect(throws: NVMeError.self) { try await bench.driver.deallocate(ranges: ranges, list: list) }
        }
        // A list that does not fit its buffer.
        await #expect(throws: NVMeError.self) {
            try await bench.driver.deallocate(ranges: [NVMeBlockRange(lba: 0, blocks: 1)], list: list, offset: 4090)
        }
        // Built by hand: the second range ends past the namespace, and nothing is deallocated.
        NVMeBlockRange(lba: 1000, blocks: 1).store(to: list.bytes.baseAddress!)
        NVMeBlockRange(lba: 1020, blocks: 5).store(to: list.bytes.baseAddress! + 16)
        let command = NVMeCommand.deallocate(namespaceID: 1, ranges: 2)
        let error = await #expect(throws: NVMeError.self) {
            try await bench.driver.submit(command, data: NVMeDataRange(list, count: 32))
        }
        #expect(error == .failed(command: command.name(admin: false), status: .lbaOutOfRange))
        #expect(bench.namespace.read(lba: 1000, count: 1) == Array(out.bytes[0..<512]))
    }

    @Test func writeZeroesZeroesOrDeallocatesOnlyItsBlocks() async throws {
        let path = Self.imagePath()
        defer { _ = unlink(path) }
        let image = try NVMeNamespace(imageAt: path, blockSize: 4096, createSize: 4 << 20)
        let bench = try NVMeTestBench(extra: [image])
        let out = try bench.patterned(1 << 20, seed: 7)
        for i in 0..<8 {
            try await bench.driver.write(namespace: 2, lba: UInt64(i) * 128, blocks: 128, from: out, offset: i % 2 * (1 << 19))
        }
        try await bench.driver.flush(namespace: 2)
        let before = try #require(image.allocatedBytes)

        // Without DEAC the blocks are written with zeroes and stay allocated.
        try await bench.driver.writeZeroes(namespace: 2, lba: 256, blocks: 256, deallocate: false)
        #expect(image.read(lba: 256, count: 256).allSatisfy { $0 == 0 })
        let written = try #require(image.allocatedBytes)
        #expect(written >= before)
        // With it (DLFEAT bit 3) they are deallocated: zeroes, and the space given back.
        try await bench.driver.writeZeroes(namespace: 2, lba: 512, blocks: 256)
        #expect(image.read(lba: 512, count: 256).allSatisfy { $0 == 0 })
        let punched = try #require(image.allocatedBytes)
        #expect(punched <= before - (1 << 20))
        #expect(image.read(lba: 255, count: 1) == Array(out.bytes[255 * 4096..<256 * 4096]))
        #expect(image.read(lba: 768, count: 1) == Array(out.bytes[0..<4096]))

        // Out of range: refused by the driver, answered LBA Out of Range by the controller.
        await #expect(throws: NVMeError.self) { try await bench.driver.writeZeroes(namespace: 2, lba: 1020, blocks: 5) }
        await #expect(throws: NVMeError.self) { try await bench.driver.writeZeroes(namespace: 2, lba: 0, blocks: 65537) }
        let command = NVMeCommand.writeZeroes(namespaceID: 2, lba: 1020, blocks: 5)
        let error = await #expect(throws: NVMeError.self) { try await bench.driver.submit(command) }
        #expect(error == .failed(command: command.name(admin: false), status: .lbaOutOfRange))
        #expect(image.read(lba: 1020, count: 4) == Array(out.bytes[(1020 - 768) * 4096..<256 * 4096]))
    }

    @Test func compareSaysEqualOrCompareFailure() async throws {
        let bench = try NVMeTestBench(blocks: 1024)
        let out = try bench.patterned(8192, seed: 2)
        try await bench.driver.write(lba: 100, blocks: 16, from: out)
        let equal = try await bench.driver.compare(lba: 100, blocks: 16, with: out)
        #expect(equal)
        out.bytes[8191] = out.bytes[8191] ^ 1
        let lastDiffers = try await bench.driver.compare(lba: 100, blocks: 16, with: out)
        #expect(!lastDiffers)
        out.bytes[8191] = out.bytes[8191] ^ 1
        out.bytes[0] = out.bytes[0] ^ 0x80
        let firstDiffers = try await bench.driver.compare(lba: 100, blocks: 16, with: out)
        #expect(!firstDiffers)
        // The status itself: SCT 2h, SC 85h.
        var command = NVMeCommand.compare(namespaceID: 1, lba: 100, blocks: 16)
        command.prp1 = out.deviceAddress
        command.prp2 = out.deviceAddress + 4096
        let error = await #expect(throws: NVMeError.self) { try await bench.driver.submit(command) }
        #expect(error == .failed(command: command.name(admin: false), status: .compareFailure))
        let outside = NVMeCommand.compare(namespaceID: 1, lba: 1020, blocks: 16)
        let range = await #expect(throws: NVMeError.self) { try await bench.driver.submit(outside, data: NVMeDataRange(out)) }
        #expect(range == .failed(command: outside.name(admin: false), status: .lbaOutOfRange))
        // Compare never writes.
        #expect(bench.namespace.read(lba: 100, count: 1)[0] == out.bytes[0] ^ 0x80)
    }

    @Test func commandsTheControllerLacksAreRefusedBeforeSubmission() async throws {
        let bench = try NVMeTestBench(controllerOptions: { $0.optionalCommands = 0 })
        let out = try bench.patterned(4096, seed: 3)
        try await bench.driver.write(lba: 0, blocks: 8, from: out)
        let list = try bench.device.dma.allocate(4096)
        let dsm = await #expect(throws: NVMeError.self) { try await bench.driver.deallocate(lba: 0, blocks: 8, list: list) }
        #expect(dsm?.description.contains("does not support Dataset Management (Identify Controller ONCS bit 2 is clear)") == true)
        let wz = await #expect(throws: NVMeError.self) { try await bench.driver.writeZeroes(lba: 0, blocks: 8) }
        #expect(wz?.description.contains("Write Zeroes (Identify Controller ONCS bit 3") == true)
        let cmp = await #expect(throws: NVMeError.self) { _ = try await bench.driver.compare(lba: 0, blocks: 8, with: out) }
        #expect(cmp?.description.contains("Compare (Identify Controller ONCS bit 0") == true)
        #expect(bench.namespace.read(lba: 0, count: 8) == Array(out.bytes))
        // Sent anyway, the controller answers Invalid Command Opcode and changes nothing.
        let command = NVMeCommand.writeZeroes(namespaceID: 1, lba: 0, blocks: 8)
        let error = await #expect(throws: NVMeError.self) { try await bench.driver.submit(command) }
        #expect(error == .failed(command: command.name(admin: false), status: .invalidOpcode))
        #expect(bench.namespace.read(lba: 0, count: 8) == Array(out.bytes))
    }

    @Test func fuaWritesAreCommittedBeforeTheyComplete() async throws {
        let bench = try NVMeTestBench()
        let out = try bench.patterned(4096, seed: 6)
        try await bench.driver.write(lba: 0, blocks: 8, from: out)
        #expect(bench.namespace.commits == 0)
        try await bench.driver.write(lba: 8, blocks: 8, from: out, fua: true)
        #expect(bench.namespace.commits == 1)
        #expect(bench.namespace.read(lba: 8, count: 8) == Array(out.bytes))
        try await bench.driver.writeZeroes(lba: 8, blocks: 8, fua: true)
        #expect(bench.namespace.commits == 2)
    }

    @Test func flushReachesTheControllerOnlyWhenItHasAVolatileCache() async throws {
        let cached = try NVMeTestBench()
        try await cached.driver.flush()
        #expect(cached.namespace.commits == 1)

        let uncached = try NVMeTestBench(controllerOptions: { $0.volatileWriteCache = false })
        // A Flush that reached this controller would never complete.
        uncached.controller.stall(commands: 1, opcode: NVMeCommand.Opcode.flush)
        try await uncached.driver.flush()
        #expect(uncached.controller.heldCommands == 0)
        #expect(uncached.namespace.commits == 0)
        // Without a cache every write is committed as it completes.
        let out = try uncached.patterned(512, seed: 1)
        try await uncached.driver.write(lba: 0, blocks: 1, from: out)
        #expect(uncached.namespace.commits == 1)
    }
}
