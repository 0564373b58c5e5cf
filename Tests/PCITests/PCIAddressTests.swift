import Testing
@testable import PCI

@Suite struct PCIAddressTests {
    @Test func parsesFullAndShortForms() throws {
        let a = try PCIAddress(parsing: "0000:03:1f.7")
        #expect(a.domain == 0 && a.bus == 3 && a.device == 0x1f && a.function == 7)
        #expect(a.description == "0000:03:1f.7")
        let b = try PCIAddress(parsing: "af:00.1")
        #expect(b == (try PCIAddress(domain: 0, bus: 0xaf, device: 0, function: 1)))
        let c = try PCIAddress(parsing: "10000:00:00.0")
        #expect(c.domain == 0x10000 && c.description == "10000:00:00.0")
    }

    @Test(arguments: [
        "", "0000:03:00", "0000:03:20.0", "0000:03:00.8", "../00:00.0", "0000:03/00.0",
        "0000:3:00.0", "0000:03:0.0", "0000:03:00.0\n", "0000:03:00.0/..", "zz:00.0", "0000:03:00.+1",
        "123456789:00:00.0", "0000::00.0", "00 :00.0",
    ])
    func rejectsMalformed(_ text: String) {
        #expect(throws: PCIAddressError.self) { try PCIAddress(parsing: text) }
    }

    @Test func errorNamesTheInput() {
        do {
            _ = try PCIAddress(parsing: "0000:03:00.9")
            Issue.record("accepted a function above 7")
        } catch {
            #expect(error.description.contains("0000:03:00.9"))
            #expect(error.description.contains("function"))
        }
    }

    @Test func ordersByDomainBusDeviceFunction() throws {
        let list = try ["0001:00:00.0", "0000:01:00.0", "0000:00:01.0", "0000:00:00.1"].map { try PCIAddress(parsing: $0) }
        #expect(list.sorted().map(\.description) == ["0000:00:00.1", "0000:00:01.0", "0000:01:00.0", "0001:00:00.0"])
    }
}
