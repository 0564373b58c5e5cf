import Foundation
import Testing
@testable import PCI

@Suite struct InspectReportTests {
    static func richReport() throws -> InspectReport {
        let text = Fixtures.dumpText(Fixtures.richDevice) + DumpParserTests.virtioNet
        return InspectReport(dump: try PCIDump(parsing: text, name: "rich.dump"))
    }

    @Test func textShowsIdentityBARsAndDecodedCapabilities() throws {
        let text = try Self.richReport().text()
        let expected = """
            rich.dump: 2 devices

            0000:6a:01.0 8086:0b25 rev 01, class 0880.00 (Generic system peripheral), header 00 (endpoint), 4096 config bytes
              title: System peripheral: Intel
              subsystem: 8086:0000
              BAR0: memory64 prefetchable at 0x206ffff40000
              cap  0x040 [0x01] Power Management v3: now D0, PME from none, no soft reset
              cap  0x050 [0x05] MSI: disabled, 1/8 vectors, 64-bit, per-vector masking (mask 0xff, pending 0x0), address 0xfee00000 data 0x0041
              cap  0x070 [0x10] PCI Express v2 Endpoint, interrupt message 0, max payload 256/512 bytes, max read request 512 bytes, FLR; link: port 0, 16GT/s x8 (capable of 16GT/s x8)
              cap  0x0b0 [0x11] MSI-X: enabled, 9 vectors, table at BAR0+0x2000, PBA at BAR0+0x3000
              ecap 0x100 [0x0001 v2] Advanced Error Reporting
              ecap 0x140 [0x0010 v1] SR-IOV: VFs disabled, 0 of 8 (initial 4), VF device 0x0b26, offset 1 stride 1, page sizes 0x0 (system 0x0)
              ecap 0x180 [0x000f v1] ATS: enabled, invalidate queue depth 32, smallest translation unit 0, global invalidate
              ecap 0x190 [0x001b v1] PASID: enabled, 20-bit PASIDs, privileged
              ecap 0x1a0 [0x0023 v1] DVSEC: vendor 0x8086 ID 0x0005 revision 0, 24 bytes; Intel Scalable IOV: IMS supported, homogeneous, page sizes 0x1 (system 0x1)

            0000:00:03.0 1af4:1000 rev 00, class 0200.00 (Network controller), header 00 (endpoint), 64 config bytes
              title: Ethernet controller: Red Hat, Inc. Virtio network device
              subsystem: 1af4:0001
              BAR0: io at 0xc000
              BAR1: memory32 at 0xfe001000
              BAR3: memory64 prefetchable at 0xfe004000
              problem: standard capability pointer at 0x34 leads to 0x98, past the 64 config bytes held; the walk stopped there (a fuller dump, lspci -xxxx, would go on)

            """
        #expect(text == expected)
    }

    @Test func jsonIsStableSortedAndMachineReadable() throws {
        let report = try Self.richReport()
        let json = try report.json()
        #expect(json == (try Self.richReport().json()))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["file"] as? String == "rich.dump")
        let devices = try #require(object["devices"] as? [[String: Any]])
        #expect(devices.count == 2)
        let first = devices[0]
        #expect(first["address"] as? String == "0000:6a:01.0")
        #expect(first["vendorID"] as? Int == 0x8086)
        #expect(first["configSize"] as? Int == 4096)
        let caps = try #require(first["capabilities"] as? [[String: Any]])
        #expect(caps.map { $0["offset"] as? Int } == [0x40, 0x50, 0x70, 0xb0, 0x100, 0x140, 0x180, 0x190, 0x1a0])
        let msix = try #require((caps[3]["decoded"] as? [String: Any])?["msix"] as? [String: Any])
        #expect(msix["tableSize"] as? Int == 9)
        #expect((msix["table"] as? [String: Any])?["bar"] as? Int == 0)
        #expect((msix["pendingBitArray"] as? [String: Any])?["offset"] as? Int == 0x3000)
        let siov = try #require((caps[8]["decoded"] as? [String: Any])?["scalableIOV"] as? [String: Any])
        #expect(siov["isIMSSupported"] as? Bool == true)
        #expect(caps[8]["version"] as? Int == 1 && caps[8]["chain"] as? String == "extended")
        let pcie = try #require((caps[2]["decoded"] as? [String: Any])?["pciExpress"] as? [String: Any])
        #expect(pcie["deviceType"] as? String == "Endpoint")
        #expect((pcie["link"] as? [String: Any])?["currentSpeed"] as? String == "16GT/s")
        let second = try #require(devices[1]["problems"] as? [String])
        #expect(second.count == 1 && second[0].contains("0x98"))
        // Keys are sorted: "address" precedes "bars" precedes "capabilities" in the text itself.
        let address = try #require(json.range(of: "\"address\""))
        let bars = try #require(json.range(of: "\"bars\""))
        #expect(address.lowerBound < bars.lowerBound)
    }

    @Test func unreadableFieldsBecomeProblemsNotCrashes() throws {
        let config = try ConfigSpace(partialBytes: [0x86, 0x80, nil, nil, 0, 0, 0x10, 0])
        let report = ConfigSpaceReport(address: try PCIAddress(parsing: "00:00.0"), config: config)
        #expect(report.vendorID == 0x8086)
        #expect(report.deviceID == nil && report.classCode == nil && report.headerType == nil)
        #expect(report.problems.contains { $0.hasPrefix("device ID: config byte 0x002") })
        #expect(report.text.hasPrefix("0000:00:00.0 8086:???? rev ??, class ????.??, header ??, 8 config bytes"))
    }

    @Test func aCapabilityThatCannotBeDecodedKeepsItsEntry() throws {
        var builder = ConfigBuilder(size: 0x54)
        builder.addCapability(0x11, at: 0x50, body: le16(0))  // MSI-X needs 12 bytes; only 4 are held
        let report = ConfigSpaceReport(address: try PCIAddress(parsing: "00:00.0"), config: try builder.config)
        let entry = try #require(report.capabilities.first)
        #expect(entry.id == 0x11 && entry.decoded == nil)
        #expect(entry.decodeError?.contains("0x054") == true)
        #expect(report.text.contains("cap  0x050 [0x11] MSI-X: cannot decode: config byte 0x054"))
    }
}
