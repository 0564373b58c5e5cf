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
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "Records/linux-\(kernel.rawValue).json")
        return try JSONDecoder().decode([ConformanceRecord].self, from: Data(contentsOf: url))
    }

    /// Runs the scenarios on a mock configured as `configuration` and compares with `kernel`'s records.
    static func compare(_ kernel: GuestKernel, configuration: MockKernel.Configuration) throws -> (ConformanceComparison, modes: Int) {
        let mock = try MockKernel.conformanceGuest(target, configuration: configuration)
        let modes = Conformance.availableModes(mock)
        let records = Conformance.run(on: mock, target: target, modes: modes)
        #expect(mock.openFileCount == 0)
        return (conformanceComparison(kernel: try kernelRecords(kernel), mock: records), modes.count)
    }

    @Test func mockAnswersAsEachKernelDid() throws {
        var records = 0, differences = 0, known = 0, modes = 0
        for kernel in GuestKernel.allCases {
            let recorded = try Self.kernelRecords(kernel)
            let (comparison, m) = try Self.compare(kernel, configuration: kernel.configuration)
            for d in comparison.known + comparison.differences { print(d) }
            #expect(comparison.differences.isEmpty, "\(kernel.profile)")
            #expect(comparison.recordsCompared == recorded.count, "every recorded record has a mock twin")
            records += comparison.recordsCompared
            differences += comparison.differences.count
            known += comparison.known.count
            modes = max(modes, m)
        }
        let scenarios = Conformance.scenarios.filter { $0.needs(Self.target) }.count
        print(
            Conformance.summary(
                scenarios: scenarios, modes: modes, kernels: GuestKernel.allCases.count, records: records,
                differences: differences, known: known))
    }

    /// A profile value wrong for the kernel (6.1's packed capability chains on the 6.12 guest)
    /// is a difference, printed with the kernel's answer and the mock's side by side.
    @Test func aWrongProfileValueIsADifference() throws {
        var c = GuestKernel.linux6_12.configuration
        c.profile.alignsInfoCapabilities = false
        let (comparison, _) = try Self.compare(.linux6_12, configuration: c)
        #expect(!comparison.differences.isEmpty)
        let lines = comparison.differences.flatMap { $0.split(separator: "\n") }
        let wrong = try #require(lines.first { $0.hasPrefix("!") && $0.contains("argsz 120") }, "\(comparison.differences)")
        #expect(
            wrong.contains("argsz 120 flags 0x3") && wrong.contains("| ") && wrong.contains("argsz 116 flags 0x3"),
            "both sides printed: \(wrong)")
    }

    /// A known difference excuses its own steps only: a difference after it in the same record
    /// is still found.
    @Test func aKnownDifferenceExcusesOnlyItsSteps() {
        let known = KnownDifference(scenario: "s", kernel: ["a", "b"], mock: ["x"], reason: "r")
        let kernel = [ConformanceRecord(scenario: "s", mode: "m", lines: ["0", "a", "b", "1", "2"])]
        let same = [ConformanceRecord(scenario: "s", mode: "m", lines: ["0", "x", "1", "2"])]
        let after = [ConformanceRecord(scenario: "s", mode: "m", lines: ["0", "x", "1", "3"])]
        let excused = conformanceComparison(kernel: kernel, mock: same, known: [known])
        #expect(excused.differences.isEmpty && excused.known.count == 1 && excused.recordsCompared == 1)
        let caught = conformanceComparison(kernel: kernel, mock: after, known: [known])
        #expect(caught.differences.count == 1)
        #expect(caught.differences.first?.contains("! 2") == true)
        #expect(caught.differences.first?.contains("| 3") == true)
        #expect(conformanceComparison(kernel: kernel, mock: same, known: []).differences.count == 1)
    }
}
