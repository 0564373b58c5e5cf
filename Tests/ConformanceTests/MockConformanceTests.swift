import PCI
import Testing
import VFIOConformance
import VFIOMock

@Suite struct MockConformanceTests {
    static let target = ConformanceTarget(
        edu: try! PCIAddress(parsing: "0000:00:03.0"), msix: try! PCIAddress(parsing: "0000:00:05.0"),
        nonViable: try! PCIAddress(parsing: "0000:01:01.0"))

    @Test func printRecords() throws {
        let mock = try MockKernel.conformanceGuest(Self.target, kernel: .linux6_12)
        let records = Conformance.run(on: mock, target: Self.target, modes: Conformance.availableModes(mock))
        for r in records { print(r.text) }
        #expect(mock.openFileCount == 0)
    }
}
