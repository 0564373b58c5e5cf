import Foundation
import Testing

/// `vfiokit nvme dsm` and `write-zeroes` on a simulated controller's image: exactly their
/// blocks read back as zeroes in a later run, the blocks around them keep their data.
@Suite struct NVMeDataManagementCommandTests {
    @Test func deallocateAndWriteZeroesClearExactlyTheirBlocks() throws {
        let image = NVMeCommandTests.temporary("dm.img"), input = NVMeCommandTests.temporary("dm-in")
        let output = NVMeCommandTests.temporary("dm-out")
        defer { for f in [image, input, output] { try? FileManager.default.removeItem(atPath: f) } }
        let data = Data((0..<(64 * 512)).map { UInt8(truncatingIfNeeded: $0 &* 7 | 1) })
        try data.write(to: URL(fileURLWithPath: input))
        let write = try runVFIOKit(["nvme", "write", "--simulated", image, "--create", "1M", "--lba", "0", "--input", input])
        #expect(write.status == 0, "stderr: \(write.error)")
        let dsm = try runVFIOKit(["nvme", "dsm", "--simulated", image, "--lba", "8", "--blocks", "16"])
        #expect(dsm.status == 0, "stderr: \(dsm.error)")
        #expect(dsm.error.contains("deallocated 16 blocks at LBA 8 of namespace 1"), "\(dsm.error)")
        let zero = try runVFIOKit(["nvme", "write-zeroes", "--simulated", image, "--lba", "40", "--blocks", "4", "--deac"])
        #expect(zero.status == 0, "stderr: \(zero.error)")
        #expect(zero.error.contains("zeroed 4 blocks at LBA 40 of namespace 1 (DEAC)"), "\(zero.error)")
        let plain = try runVFIOKit(["nvme", "write-zeroes", "--simulated", image, "--lba", "50", "--blocks", "2"])
        #expect(plain.status == 0, "stderr: \(plain.error)")
        let read = try runVFIOKit(["nvme", "read", "--simulated", image, "--lba", "0", "--blocks", "64", "--output", output])
        #expect(read.status == 0, "stderr: \(read.error)")
        let back = try Data(contentsOf: URL(fileURLWithPath: output))
        for block in 0..<64 {
            let range = block * 512..<(block + 1) * 512
            let zeroed = (8..<24).contains(block) || (40..<44).contains(block) || (50..<52).contains(block)
            #expect(back[range] == (zeroed ? Data(count: 512) : data[range]), "block \(block)")
        }
    }

    @Test func identifyReportsTheLimitsAndRetryDelays() throws {
        let json = try runVFIOKit(["nvme", "identify", "--simulated", "--json"])
        #expect(json.status == 0, "stderr: \(json.error)")
        let report = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any]
        let limits = report?["limits"] as? [String: Any]
        #expect(limits?["maxDeallocateRanges"] as? Int == 256, "\(json.output)")
        let controller = report?["controller"] as? [String: Any]
        #expect(controller?["commandRetryDelayTimes"] as? [Int] == [0, 0, 0])
        let text = try runVFIOKit(["nvme", "identify", "--simulated"])
        #expect(text.output.contains("dmrl    : 256 ranges") && text.output.contains("wzsl    : no limit"), "\(text.output)")
    }

    @Test func anEmptyRangeIsRefused() throws {
        let dsm = try runVFIOKit(["nvme", "dsm", "--simulated", "--lba", "0", "--blocks", "0"])
        #expect(dsm.status == 64 && dsm.error.contains("--blocks must be at least 1"), "\(dsm.error)")
        let zero = try runVFIOKit(["nvme", "write-zeroes", "--simulated", "--lba", "999999999", "--blocks", "1"])
        #expect(zero.status == 1 && zero.error.contains("outside namespace 1"), "\(zero.error)")
    }
}
