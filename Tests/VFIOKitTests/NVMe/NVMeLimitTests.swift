import Testing
import VFIODrivers
import VFIOKit
import VFIOMock

/// The NVM command set's limits (Identify CNS 06h): read at bring-up, Write Zeroes split at
/// WZSL, Dataset Management ranges split at DMRSL, and more ranges than DMRL refused before
/// submission. The simulated controller answers a command past a limit with Invalid Field.
@Suite struct NVMeLimitTests {
    /// WZSL 1 (8 KiB: 16 blocks of 512 bytes), DMRL 4, DMRSL 16 blocks.
    static func limited(_ options: inout NVMeController.Options) {
        options.nvmLimits = .init(writeZeroesSize: 1, ranges: 4, rangeSize: 16)
    }

    @Test func theLimitsAreReadAndAControllerWithoutThemSetsNone() throws {
        let bench = try NVMeTestBench(controllerOptions: Self.limited)
        let limits = bench.driver.limits
        #expect(limits.maxWriteZeroesBytes == 8192)
        #expect(limits.maxDeallocateRanges == 4)
        #expect(limits.maxDeallocateRangeBlocks == 16)
        #expect(limits.maxDeallocateBlocks == nil)
        #expect(limits.writeZeroesBlocks(blockSize: 512) == 16)

        let old = try NVMeTestBench(controllerOptions: { $0.nvmLimits = nil })
        #expect(old.driver.limits == NVMeNVMLimits())
        #expect(old.driver.limits.maxDeallocateRanges == 256)
        #expect(old.driver.limits.writeZeroesBlocks(blockSize: 512) == 65536)
    }

    @Test func aWriteZeroesPastWZSLIsSplit() async throws {
        let bench = try NVMeTestBench(blocks: 1024, controllerOptions: Self.limited)
        bench.namespace.write(lba: 0, [UInt8](repeating: 0x5a, count: 100 * 512))
        try await bench.driver.writeZeroes(lba: 10, blocks: 50, deallocate: false)
        #expect(bench.namespace.read(lba: 10, count: 50).allSatisfy { $0 == 0 })
        #expect(bench.namespace.read(lba: 9, count: 1).allSatisfy { $0 == 0x5a })
        #expect(bench.namespace.read(lba: 60, count: 1).allSatisfy { $0 == 0x5a })
        #expect(bench.controller.errorCount == 0)
        // Past one command's 65,536 blocks too, on a controller without WZSL.
        let big = try NVMeTestBench(blocks: 140_000)
        big.namespace.write(lba: 65_600, [UInt8](repeating: 0x5a, count: 512))
        try await big.driver.writeZeroes(lba: 1, blocks: 131_073)
        #expect(big.namespace.read(lba: 65_600, count: 1).allSatisfy { $0 == 0 })
    }

    @Test func deallocateRangesPastDMRSLAreSplit() async throws {
        let bench = try NVMeTestBench(blocks: 1024, controllerOptions: Self.limited)
        bench.namespace.write(lba: 0, [UInt8](repeating: 0x5a, count: 200 * 512))
        let list = try bench.device.dma.allocate(4096)
        // 40 blocks become ranges of 16, 16 and 8; with the other, 4 ranges: DMRL's limit.
        try await bench.driver.deallocate(ranges: [NVMeBlockRange(lba: 0, blocks: 40), NVMeBlockRange(lba: 100, blocks: 8)], list: list)
        #expect(bench.namespace.read(lba: 0, count: 40).allSatisfy { $0 == 0 })
        #expect(bench.namespace.read(lba: 100, count: 8).allSatisfy { $0 == 0 })
        #expect(bench.namespace.read(lba: 40, count: 1).allSatisfy { $0 == 0x5a })
        #expect(bench.controller.errorCount == 0)
        let descriptors = (0..<4).map { list.bytes.load(fromByteOffset: 16 * $0 + 4, as: UInt32.self) }
        #expect(descriptors == [16, 16, 8, 8])
    }

    @Test func moreRangesThanDMRLAreRefusedBeforeSubmission() async throws {
        let bench = try NVMeTestBench(blocks: 1024, controllerOptions: Self.limited)
        let list = try bench.device.dma.allocate(4096)
        let five = (0..<5).map { NVMeBlockRange(lba: UInt64($0) * 32, blocks: 8) }
        let error = await #expect(throws: NVMeError.self) { try await bench.driver.deallocate(ranges: five, list: list) }
        #expect(error?.description.contains("1…4 ranges on this controller (DMRL), not 5") == true, "\(String(describing: error))")
        // One range that DMRSL splits into five.
        let split = await #expect(throws: NVMeError.self) { try await bench.driver.deallocate(lba: 0, blocks: 80, list: list) }
        #expect(
            split?.description.contains("not 5 (1 split at the controller's 16-block range size limit, DMRSL)") == true,
            "\(String(describing: split))")
        #expect(bench.controller.errorCount == 0, "nothing reached the controller")
    }
}
