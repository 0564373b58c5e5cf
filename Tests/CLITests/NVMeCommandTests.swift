import Foundation
import Testing

/// `vfiokit nvme` on the simulated controller: identify, write then read in separate runs of
/// one image, verify, bench's JSON, and refusals.
@Suite struct NVMeCommandTests {
    struct Identify: Decodable {
        struct Controller: Decodable { let modelNumber, serialNumber: String; let maxDataTransferExponent: Int }
        struct Namespace: Decodable { let id: Int; let size: Int; let blockSize: Int }
        let controller: Controller
        let namespaces: [Namespace]
        let maxTransferBytes: Int
    }

    struct Bench: Decodable {
        let iops: Double
        let ios: Int
        let errors: Int
        struct Figures: Decodable {
            let cpu_ns_per_io, completion_to_doorbell_ns_per_io, sq_doorbell_ns_per_write, ratio_to_spdk, spdk_ns_per_io: Double
        }
        let polled_figures: Figures?
        let doorbell: String
        let allocations_per_io: Double?
        let allocations_not_counted: String?
        let queue_depth: Int
        let polled: Bool
    }

    static func temporary(_ name: String) -> String {
        NSTemporaryDirectory() + "vfiokit-nvme-cli-\(UInt32.random(in: 0 ... .max))-\(name)"
    }

    @Test func identifyDescribesTheSimulatedController() throws {
        let result = try runVFIOKit(["nvme", "identify", "--simulated", "--json"])
        #expect(result.status == 0, "stderr: \(result.error)")
        let identify = try JSONDecoder().decode(Identify.self, from: Data(result.output.utf8))
        #expect(identify.controller.modelNumber == "VFIOKit simulated NVMe")
        #expect(identify.controller.maxDataTransferExponent == 7)
        #expect(identify.maxTransferBytes == 512 * 1024)
        #expect(identify.namespaces.map(\.id) == [1])
        #expect(identify.namespaces.first?.size == 131_072)
    }

    @Test func dataWrittenInOneRunIsReadInTheNext() throws {
        let image = Self.temporary("disk.img"), input = Self.temporary("in"), output = Self.temporary("out")
        defer { for f in [image, input, output] { try? FileManager.default.removeItem(atPath: f) } }
        let data = Data((0..<12_000).map { UInt8(truncatingIfNeeded: $0 &* 13 ^ $0 >> 8) })
        try data.write(to: URL(fileURLWithPath: input))
        let write = try runVFIOKit(["nvme", "write", "--simulated", image, "--create", "1M", "--lba", "77", "--input", input])
        #expect(write.status == 0, "stderr: \(write.error)")
        #expect(write.error.contains("wrote 24 blocks (12000 bytes, zero-padded) at LBA 77"))
        #expect((try FileManager.default.attributesOfItem(atPath: image)[.size] as? Int) == 1 << 20)
        let read = try runVFIOKit(["nvme", "read", "--simulated", image, "--lba", "77", "--blocks", "24", "--output", output])
        #expect(read.status == 0, "stderr: \(read.error)")
        let back = try Data(contentsOf: URL(fileURLWithPath: output))
        #expect(back.count == 24 * 512)
        #expect(back.prefix(12_000) == data)
        #expect(back.dropFirst(12_000).allSatisfy { $0 == 0 })
    }

    @Test func anImageThatDoesNotExistIsRefusedNotCreated() throws {
        let image = Self.temporary("absent.img")
        let result = try runVFIOKit(["nvme", "identify", "--simulated", image])
        #expect(result.status != 0)
        #expect(result.error.contains("the NVMe image \(image) does not exist: give --create SIZE"), "stderr: \(result.error)")
        #expect(result.error.contains("Usage: vfiokit nvme identify"))
        #expect(!FileManager.default.fileExists(atPath: image))
    }

    @Test(arguments: [(0, "is 0 bytes"), (1000, "is 1000 bytes")])
    func anEmptyOrPartBlockImageIsRefusedNotGrown(_ size: Int, _ complaint: String) throws {
        let image = Self.temporary("bad.img")
        defer { try? FileManager.default.removeItem(atPath: image) }
        try Data(count: size).write(to: URL(fileURLWithPath: image))
        let result = try runVFIOKit(["nvme", "identify", "--simulated", image])
        #expect(result.status != 0)
        #expect(result.error.contains("NVMe image \(image) \(complaint): it must be a non-zero multiple of the 512-byte block size"), "stderr: \(result.error)")
        #expect((try FileManager.default.attributesOfItem(atPath: image)[.size] as? Int) == size)
    }

    @Test func aNegativeLBAIsNamedAsSuch() throws {
        let result = try runVFIOKit(["nvme", "read", "--simulated", "--lba", "-1", "--blocks", "1"])
        #expect(result.status != 0)
        #expect(result.error.contains("LBA must be a non-negative integer"), "stderr: \(result.error)")
    }

    @Test func anUnreadableInputSaysWhy() throws {
        let result = try runVFIOKit(["nvme", "write", "--simulated", "--lba", "0", "--input", "/nonexistent/input"])
        #expect(result.status != 0)
        #expect(result.error.contains("cannot read /nonexistent/input: No such file or directory"), "stderr: \(result.error)")
    }

    @Test func verifyPassesEveryTransferShape() throws {
        let result = try runVFIOKit(["nvme", "verify", "--simulated"])
        #expect(result.status == 0, "stderr: \(result.error)")
        #expect(result.output.contains("verify: 5 ok, 0 failed"))
        #expect(result.output.contains("ok   the largest transfer (a PRP list)"))
    }

    @Test func polledBenchReportsIOPSAndDriverTime() throws {
        let result = try runVFIOKit(["nvme", "bench", "--simulated", "--poll", "--json", "--seconds", "0.5", "--queue-depth", "8"])
        #expect(result.status == 0, "stderr: \(result.error)")
        let bench = try JSONDecoder().decode(Bench.self, from: Data(result.output.utf8))
        #expect(bench.ios > 0 && bench.iops > 0)
        #expect(bench.errors == 0)
        #expect(bench.polled && bench.queue_depth == 8)
        // The SPDK comparison is the whole thread's CPU per I/O. The split is wall-clock time,
        // so a thread preempted inside it (a loaded machine) may show more than its CPU time:
        // no order between the two is asserted.
        let figures = try #require(bench.polled_figures)
        #expect(figures.cpu_ns_per_io > 0 && figures.completion_to_doorbell_ns_per_io > 0)
        #expect(figures.ratio_to_spdk == figures.cpu_ns_per_io / figures.spdk_ns_per_io)
        #expect(bench.doorbell.contains("shared memory"))
        // The binary users run carries no malloc interposer, and says so.
        #expect(bench.allocations_per_io == nil)
        #expect(bench.allocations_not_counted?.contains("vfiokit-bench") == true)
    }

    @Test func interruptDrivenBenchRunsOnSeveralQueues() throws {
        let result = try runVFIOKit(["nvme", "bench", "--simulated", "--json", "--seconds", "0.5", "--queues", "2", "--workload", "randwrite"])
        #expect(result.status == 0, "stderr: \(result.error)")
        let bench = try JSONDecoder().decode(Bench.self, from: Data(result.output.utf8))
        #expect(bench.ios > 0 && bench.errors == 0 && !bench.polled)
        #expect(bench.polled_figures == nil)
    }

    @Test(arguments: [
        (["nvme", "read", "--simulated", "--lba", "131070", "--blocks", "4"], "beyond namespace 1"),
        (["nvme", "read", "--simulated", "--lba", "0", "--blocks", "1", "--namespace", "2"], "no namespace 2"),
        (["nvme", "identify"], "give the controller's PCI address"),
        (["nvme", "identify", "00:zz.0"], "is not a PCI address"),
        (["nvme", "bench", "--simulated", "--workload", "trim"], "unknown workload"),
        (["nvme", "bench", "--simulated", "--queue-depth", "2000", "--seconds", "0.1"], "exceeds what CAP.MQES allows"),
        (["nvme", "ublk", "--simulated", "--namespace", "2"], "namespace 2 does not exist"),
        (["nvme", "ublk", "--simulated", "--queues", "0"], "--queues 0 is outside 1…64"),
    ])
    func badInputIsRefusedWithWhatWasWrong(arguments: [String], message: String) throws {
        let result = try runVFIOKit(arguments)
        #expect(result.status != 0)
        #expect(result.error.contains(message), "stderr: \(result.error)")
    }
}
