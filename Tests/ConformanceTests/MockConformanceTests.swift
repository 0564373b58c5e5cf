import Foundation
import PCI
import Testing
import VFIOConformance
import VFIOMock

/// The conformance scenarios run on the mock, compared with the records the real kernels of
/// Tests/VM gave for the same scenarios and devices (Records/linux-VERSION.json, written by
/// `vfiokit conformance --json` in the guest). `Tests/VM/run --check conformance` compares
/// against the live kernel; this suite keeps the mock honest without a VM.
@Suite(.serialized) struct MockConformanceTests {
    /// The guest's devices: edu0, NVMe, and the edu behind the bridge that shares its group.
    static let target = ConformanceTarget(
        edu: try! PCIAddress(parsing: "0000:00:03.0"), msix: try! PCIAddress(parsing: "0000:00:05.0"),
        nonViable: try! PCIAddress(parsing: "0000:01:01.0"))

    static func kernelRecords(_ kernel: GuestKernel) throws -> [ConformanceRecord] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Records/linux-\(kernel.rawValue).json")
        return try JSONDecoder().decode([ConformanceRecord].self, from: Data(contentsOf: url))
    }

    @Test(arguments: GuestKernel.allCases)
    func mockAnswersAsTheKernelDid(_ kernel: GuestKernel) throws {
        let recorded = try Self.kernelRecords(kernel)
        let mock = try MockKernel.conformanceGuest(Self.target, kernel: kernel)
        let modes = Conformance.availableModes(mock)
        let records = Conformance.run(on: mock, target: Self.target, modes: modes)
        let (differences, known) = conformanceComparison(kernel: recorded, mock: records)
        for d in known + differences { print(d) }
        print(Conformance.summary(scenarios: Conformance.scenarios.count, modes: modes.count, differences: differences.count, known: known.count))
        #expect(differences.count == 0)
        #expect(mock.openFileCount == 0)
        #expect(Set(recorded.map(\.mode)) == Set(modes.map(\.name)))
    }
}
