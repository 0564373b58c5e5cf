import ArgumentParser
import VFIODrivers
import VFIOKit

/// `vfiokit nvme verify ADDRESS`: writes a pattern, reads it back and compares, over
/// transfers of each PRP shape, then puts the original data back.
struct NVMeVerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Write a pattern, read it back and compare: one block, two pages, a PRP list, an unaligned buffer, the namespace's end.",
        discussion: "Each range's original contents are read first and written back afterwards.")

    @OptionGroup var target: NVMeTarget
    @Option(help: "The namespace id.") var namespace: UInt32 = 1

    func run() async throws {
        let session = try target.open(NVMeDriver.Configuration())
        defer { session.close() }
        let ns = try session.namespace(namespace)
        let perCommand = max(1, min(session.driver.maxTransfer / ns.blockSize, 65536))
        let pageBlocks = max(1, 4096 / ns.blockSize)
        // (name, first block, blocks, buffer offset)
        let cases: [(String, UInt64, Int, Int)] = [
            ("one block at LBA 0 (PRP1 only)", 0, 1, 0),
            ("two pages (PRP1 and PRP2)", 64, 2 * pageBlocks, 0),
            ("the largest transfer (a PRP list)", 256, perCommand, 0),
            ("a buffer 512 bytes into a page (PRP1 offset, list)", 1024 + UInt64(perCommand), min(perCommand - 1, 3 * pageBlocks), 512),
            ("the last blocks of the namespace", ns.size - UInt64(min(perCommand, 4 * pageBlocks)), min(perCommand, 4 * pageBlocks), 0),
        ]
        var failed = 0, ran = 0
        for (index, (name, lba, blocks, offset)) in cases.enumerated() where lba + UInt64(blocks) <= ns.size {
            ran += 1
            let bytes = blocks * ns.blockSize
            let original = try session.device.dma.allocate(bytes + offset)
            let pattern = try session.device.dma.allocate(bytes + offset)
            let back = try session.device.dma.allocate(bytes + offset)
            for i in 0..<bytes { pattern.bytes[offset + i] = UInt8(truncatingIfNeeded: (i &* 7) ^ (i >> 8) ^ (index &* 0x35)) }
            let driver = session.driver
            try await driver.read(namespace: ns.id, lba: lba, blocks: blocks, into: original, offset: offset)
            try await driver.write(namespace: ns.id, lba: lba, blocks: blocks, from: pattern, offset: offset)
            try await driver.read(namespace: ns.id, lba: lba, blocks: blocks, into: back, offset: offset)
            let mismatch = (0..<bytes).first { back.bytes[offset + $0] != pattern.bytes[offset + $0] }
            try await driver.write(namespace: ns.id, lba: lba, blocks: blocks, from: original, offset: offset)
            if let mismatch {
                failed += 1
                print(
                    "FAIL \(name): LBA \(lba), \(blocks) blocks: byte \(mismatch) reads back 0x\(String(back.bytes[offset + mismatch], radix: 16)), wrote 0x\(String(pattern.bytes[offset + mismatch], radix: 16))"
                )
            } else {
                print("ok   \(name): LBA \(lba), \(blocks) blocks, \(bytes) bytes")
            }
        }
        try await session.driver.flush(namespace: ns.id)
        print("verify: \(ran - failed) ok, \(failed) failed")
        if failed > 0 { throw ExitCode.failure }
    }
}
