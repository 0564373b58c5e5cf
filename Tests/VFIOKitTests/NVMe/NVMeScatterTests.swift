import Testing
import VFIODrivers
import VFIOKit
import VFIOMock

/// Scatter I/O: requests whose data lies in several DMA segments, as chained PRP lists or SGLs,
/// up to MDTS, checked against a reference copy of the namespace.
@Suite struct NVMeScatterTests {
    /// A deterministic generator (Marsaglia's xorshift64; the state must not be 0), so a
    /// failing case runs the same way again.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
    }

    @Test func aTransferReachesMDTSBeyondTwoMiBThroughChainedPRPListsAndAnSGL() async throws {
        // MDTS 10: 4 MiB, which at a 512-byte offset needs 1024 PRP entries over three list pages.
        let bench = try NVMeTestBench(blocks: 16384, controllerOptions: { $0.maxDataTransfer = 10 })
        #expect(bench.driver.maxTransfer == 4 << 20)
        let bytes = 4 << 20, blocks = bytes / 512
        let out = try bench.patterned(bytes + 4096, seed: 11)
        try await bench.driver.write(lba: 100, blocks: blocks, from: out, offset: 512)
        #expect(bench.namespace.read(lba: 100, count: blocks).elementsEqual(out.bytes[512..<512 + bytes]))
        let back = try bench.device.dma.allocate(bytes + 4096)
        try await bench.driver.read(lba: 100, blocks: blocks, into: back, offset: 512)
        #expect(back.bytes[512..<512 + bytes].elementsEqual(out.bytes[512..<512 + bytes]))

        // The same through an SGL: one Data Block.
        var segments = NVMeSegments(capacity: 4)
        try segments.append(NVMeDataRange(deviceAddress: back.deviceAddress + 512, count: bytes))
        back.bytes.initializeMemory(as: UInt8.self, repeating: 0)
        try await bench.driver.read(lba: 100, blocks: blocks, into: segments, mode: .sgl)
        #expect(back.bytes[512..<512 + bytes].elementsEqual(out.bytes[512..<512 + bytes]))
        // One block more is refused before submission.
        await #expect(throws: NVMeError.self) { try await bench.driver.read(lba: 0, blocks: blocks + 1, into: back) }
        #expect(bench.machine.kernel.dmaFaults.isEmpty)
    }

    @Test func segmentsPRPsCannotDescribeAreRefusedBeforeSubmission() async throws {
        let bench = try NVMeTestBench(controllerOptions: { $0.sglSupport = 0 })
        #expect(bench.driver.controller?.sgl == .unsupported)
        let buffer = try bench.patterned(4 * 4096, seed: 1)
        var segments = NVMeSegments(capacity: 4)
        // 1024 bytes, then 1024 more starting inside a page: no PRP entry can say that.
        try segments.append(NVMeDataRange(deviceAddress: buffer.deviceAddress, count: 1024))
        try segments.append(NVMeDataRange(deviceAddress: buffer.deviceAddress + 4096 + 512, count: 1024))
        let error = await #expect(throws: NVMeError.self) { try await bench.driver.write(lba: 0, blocks: 4, from: segments) }
        #expect(error?.description.contains("segment 0 ends at device address") == true)
        #expect(error?.description.contains("the controller does not take SGLs") == true)
        // A middle segment that starts inside a page.
        segments.removeAll()
        try segments.append(NVMeDataRange(deviceAddress: buffer.deviceAddress, count: 4096))
        try segments.append(NVMeDataRange(deviceAddress: buffer.deviceAddress + 8192 + 8, count: 1024))
        let middle = await #expect(throws: NVMeError.self) { try await bench.driver.write(lba: 0, blocks: 10, from: segments) }
        #expect(
            middle?.description.contains(
                "segment 1 starts at device address 0x\(String(buffer.deviceAddress + 8192 + 8, radix: 16)), inside a page") == true)
        // Asking for an SGL from a controller without them.
        let sgl = await #expect(throws: NVMeError.self) { try await bench.driver.write(lba: 0, blocks: 10, from: segments, mode: .sgl) }
        #expect(sgl?.description.contains("SGLS") == true)
        // Lengths that are not the blocks' bytes.
        await #expect(throws: NVMeError.self) { try await bench.driver.write(lba: 0, blocks: 1, from: segments) }
        #expect(bench.namespace.read(lba: 0, count: 10).allSatisfy { $0 == 0 })
    }

    @Test func theSameSegmentsGoAsAnSGLWhereTheControllerTakesThem() async throws {
        let bench = try NVMeTestBench()
        #expect(bench.driver.controller?.sgl == .byteAligned)
        let buffer = try bench.patterned(4 * 4096, seed: 2)
        var segments = NVMeSegments(capacity: 4)
        try segments.append(NVMeDataRange(deviceAddress: buffer.deviceAddress + 3, count: 1021))
        try segments.append(NVMeDataRange(deviceAddress: buffer.deviceAddress + 4096 + 511, count: 3))
        try segments.append(NVMeDataRange(deviceAddress: buffer.deviceAddress + 3 * 4096 + 1, count: 1024))
        try await bench.driver.write(lba: 7, blocks: 4, from: segments)
        let expected =
            Array(buffer.bytes[3..<1024]) + Array(buffer.bytes[4096 + 511..<4096 + 514])
            + Array(buffer.bytes[3 * 4096 + 1..<3 * 4096 + 1025])
        #expect(bench.namespace.read(lba: 7, count: 4) == expected)
        // PRPs cannot: refused when asked for.
        await #expect(throws: NVMeError.self) { try await bench.driver.write(lba: 7, blocks: 4, from: segments, mode: .prp) }
        // A controller whose SGLs need dword alignment (SGLS 10b) gets none of these.
        let strict = try NVMeTestBench(controllerOptions: { $0.sglSupport = 2 })
        let refused = await #expect(throws: NVMeError.self) { try await strict.driver.write(lba: 7, blocks: 4, from: segments) }
        #expect(refused?.description.contains("dword-aligned") == true)
    }

    @Test func theControllerWalksSGLsAsTheSpecSays() async throws {
        let bench = try NVMeTestBench()
        let buffer = try bench.patterned(8192, seed: 3)
        // SGL1: a Last Segment of two Data Blocks that together hold 512 bytes fewer than asked.
        let list = try bench.device.dma.allocate(4096)
        list.bytes.storeBytes(of: buffer.deviceAddress, toByteOffset: 0, as: UInt64.self)
        list.bytes.storeBytes(of: UInt64(512), toByteOffset: 8, as: UInt64.self)
        list.bytes.storeBytes(of: buffer.deviceAddress + 4096, toByteOffset: 16, as: UInt64.self)
        list.bytes.storeBytes(of: UInt64(512), toByteOffset: 24, as: UInt64.self)
        var command = NVMeCommand.readWrite(write: true, namespaceID: 1, lba: 0, blocks: 3)
        command.dataPointerType = NVMeCommand.sglData
        command.prp1 = list.deviceAddress
        command.prp2 = 32 | UInt64(NVMeCommand.sglLastSegment) << 60
        let short = await #expect(throws: NVMeError.self) { try await bench.driver.submit(command) }
        #expect(short == .failed(command: command.name(admin: false), status: NVMeStatus(codeType: 0, code: 0x0f)))
        // Two blocks: right; a Segment chaining to a Last Segment works as well.
        command.cdw12 = 1
        try await bench.driver.submit(command)
        #expect(bench.namespace.read(lba: 0, count: 2) == Array(buffer.bytes[0..<512]) + Array(buffer.bytes[4096..<4608]))
        list.bytes.storeBytes(of: list.deviceAddress + 2048, toByteOffset: 16, as: UInt64.self)
        list.bytes.storeBytes(of: 16 | UInt64(NVMeCommand.sglLastSegment) << 60, toByteOffset: 24, as: UInt64.self)
        list.bytes.storeBytes(of: buffer.deviceAddress + 1024, toByteOffset: 2048, as: UInt64.self)
        list.bytes.storeBytes(of: UInt64(512), toByteOffset: 2056, as: UInt64.self)
        command.prp2 = 32 | UInt64(NVMeCommand.sglSegment) << 60
        try await bench.driver.submit(command)
        #expect(bench.namespace.read(lba: 0, count: 2) == Array(buffer.bytes[0..<512]) + Array(buffer.bytes[1024..<1536]))
        // A bit bucket (type 1h) is not supported.
        list.bytes.storeBytes(of: 512 | UInt64(1) << 60, toByteOffset: 2056, as: UInt64.self)
        let bucket = await #expect(throws: NVMeError.self) { try await bench.driver.submit(command) }
        #expect(bucket == .failed(command: command.name(admin: false), status: NVMeStatus(codeType: 0, code: 0x11)))
        // Without SGLS, PSDT 01b is an invalid field.
        let plain = try NVMeTestBench(controllerOptions: { $0.sglSupport = 0 })
        let refused = await #expect(throws: NVMeError.self) { try await plain.driver.submit(command) }
        #expect(refused == .failed(command: command.name(admin: false), status: .invalidField))
    }

    /// Random segment lists (up to 64 segments), written and read back through PRPs and
    /// through SGLs, against a reference copy of the namespace: byte-identical.
    @Test(arguments: [NVMeTransferMode.prp, .sgl])
    func randomSegmentListsMatchAReference(mode: NVMeTransferMode) async throws {
        let blocks: UInt64 = 8192
        let bench = try NVMeTestBench(blocks: blocks)
        var reference = [UInt8](repeating: 0, count: Int(blocks) * 512)
        var random = Generator(state: mode == .prp ? 0x9e37_79b9_7f4a_7c15 : 0x2545_f491_4f6c_dd1d)
        let pool = try bench.device.dma.allocate(2 << 20)
        let back = try bench.device.dma.allocate(2 << 20)
        var segments = NVMeSegments(capacity: 64)
        var readSegments = NVMeSegments(capacity: 64)
        for round in 0..<60 {
            for i in 0..<pool.count { pool.bytes[i] = UInt8(truncatingIfNeeded: random.next()) }
            segments.removeAll()
            readSegments.removeAll()
            let count = Int.random(in: 1...64, using: &random)
            var at = 0, total = 0
            for i in 0..<count {
                var start: Int, length: Int
                if mode == .prp {
                    // The first starts anywhere dword-aligned; every later one on a page; all
                    // but the last end on a page.
                    start = i == 0 ? 4 * Int.random(in: 0..<1024, using: &random) : (at + 4095) & ~4095
                    length =
                        i == count - 1
                        ? 4 * Int.random(in: 1...1024, using: &random)
                        : ((start + 4096) & ~4095) - start + 4096 * Int.random(in: 0...1, using: &random)
                } else {
                    start = at + Int.random(in: 0..<64, using: &random)
                    length = Int.random(in: 1...3000, using: &random)
                }
                if i == count - 1 { length += (512 - (total + length) % 512) % 512 }
                try segments.append(NVMeDataRange(deviceAddress: pool.deviceAddress + UInt64(start), count: length))
                try readSegments.append(NVMeDataRange(deviceAddress: back.deviceAddress + UInt64(start), count: length))
                at = start + length
                total += length
            }
            #expect(at <= pool.count)
            let n = total / 512
            let lba = UInt64.random(in: 0...(blocks - UInt64(n)), using: &random)
            try await bench.driver.write(lba: lba, blocks: n, from: segments, mode: mode)
            var offset = Int(lba) * 512
            for s in segments.ranges {
                let from = Int(s.deviceAddress - pool.deviceAddress)
                reference.replaceSubrange(offset..<offset + s.count, with: pool.bytes[from..<from + s.count])
                offset += s.count
            }
            back.bytes.initializeMemory(as: UInt8.self, repeating: 0xee)
            try await bench.driver.read(lba: lba, blocks: n, into: readSegments, mode: mode)
            offset = Int(lba) * 512
            var same = true
            for s in readSegments.ranges {
                let from = Int(s.deviceAddress - back.deviceAddress)
                same = same && back.bytes[from..<from + s.count].elementsEqual(reference[offset..<offset + s.count])
                offset += s.count
            }
            #expect(same, "round \(round): \(count) segments, \(n) blocks at \(lba), read back differs")
        }
        let whole = bench.namespace.read(lba: 0, count: Int(blocks)) == reference
        #expect(whole, "the namespace differs from the reference")
        #expect(bench.machine.kernel.dmaFaults.isEmpty)
    }
}
