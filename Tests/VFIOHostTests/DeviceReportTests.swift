import Foundation
import PCI
import Testing
@testable import VFIOHost

@Suite struct DeviceReportTests {
    /// Config space with a capability list (status bit 4): PM at 0x40 → MSI-X at 0x50 →
    /// PCIe at 0x70, then extended AER at 0x100 → ACS at 0x148 (v1).
    static func configSpace(size: Int = 4096) -> [UInt8] {
        var c = [UInt8](repeating: 0, count: size)
        c[0x06] = 0x10
        c[0x34] = 0x40
        c[0x40] = 0x01; c[0x41] = 0x50
        c[0x50] = 0x11; c[0x51] = 0x70
        c[0x70] = 0x10; c[0x71] = 0x00
        if size >= 0x150 {
            // AER (0x0001) v2, next 0x148.
            c.replaceSubrange(0x100..<0x104, with: [0x01, 0x00, 0x82, 0x14])
            // ACS (0x000d) v1, end.
            c.replaceSubrange(0x148..<0x14c, with: [0x0d, 0x00, 0x01, 0x00])
        }
        return c
    }

    @Test func walkFindsBothListsInOrder() {
        let caps = DecodingCapabilityLister().capabilities(in: Self.configSpace())
        #expect(caps.map(\.offset) == [0x40, 0x50, 0x70, 0x100, 0x148])
        #expect(caps.map(\.name) == ["Power Management", "MSI-X", "PCI Express", "Advanced Error Reporting", "Access Control Services"])
        #expect(caps[1].details.first?.contains("MSI-X") == true, "decoded by the PCI module")
        #expect(caps[3].version == 2 && caps[3].space == .extended && caps[0].version == nil)
    }

    @Test func walkStopsOnLoopsAndTruncation() {
        var looped = Self.configSpace()
        looped[0x71] = 0x40  // PCIe points back at PM
        looped.replaceSubrange(0x148..<0x14c, with: [0x0d, 0x00, 0x01, 0x10])  // ACS points back at 0x100
        let caps = DecodingCapabilityLister().capabilities(in: looped)
        #expect(caps.map(\.offset) == [0x40, 0x50, 0x70, 0x100, 0x148])

        #expect(DecodingCapabilityLister().capabilities(in: Array(Self.configSpace().prefix(64))).isEmpty, "unprivileged read")
        #expect(DecodingCapabilityLister().capabilities(in: Self.configSpace(size: 256)).count == 3)
        #expect(DecodingCapabilityLister().capabilities(in: []).isEmpty)
        var noList = Self.configSpace()
        noList[0x06] = 0
        // Without the list there is no PCI Express capability, so (as in libpci) the extended
        // space is not walked either.
        #expect(DecodingCapabilityLister().capabilities(in: noList).isEmpty)
    }

    struct FakeInspector: VFIODeviceInspector {
        struct Busy: Error, CustomStringConvertible { var description: String { "group 12 is in use by another process" } }
        let fail: Bool

        func inspect(_ address: PCIAddress) throws -> VFIODeviceSummary {
            if fail { throw Busy() }
            return VFIODeviceSummary(
                regions: [.init(index: 0, name: "BAR0", size: 0x4000, offset: 0, flags: ["read", "write", "mmap"], capabilities: [])],
                irqs: [.init(index: 2, name: "MSI-X", count: 9, flags: ["eventfd", "noresize"])])
        }
    }

    func makeHost() throws -> FakeHost {
        let host = try FakeHost()
        host.addDriver("vfio-pci")
        host.addDriver("snd_hda_intel")
        let dir = host.addDevice(
            "0000:03:00.0", vendor: 0x1234, device: 0x11e8, classCode: 0x00ff00, group: 12, numa: 0, driver: "vfio-pci")
        host.addDevice("0000:03:00.1", classCode: 0x040300, group: 12, driver: "snd_hda_intel")
        let config = Self.configSpace()
        try Data(config).write(to: URL(fileURLWithPath: "\(host.root)/\(dir)/config"))
        host.mkdir("dev/vfio")
        host.write("dev/vfio/12", "")
        return host
    }

    @Test func reportHoldsBarsCapabilitiesGroupAndVFIO() throws {
        let host = try makeHost()
        let address = try PCIAddress(parsing: "0000:03:00.0")
        let report = try DeviceReport.read(
            address, discovery: host.discovery, names: PCINameDatabase(), vfio: FakeInspector(fail: false))
        #expect(report.configBytesRead == 4096)
        #expect(report.capabilities.count == 5)
        #expect(report.bars.map(\.index) == [0, 2])
        #expect(report.iommuGroup?.number == 12 && report.iommuGroup?.vfioNode == "/dev/vfio/12" && report.iommuGroup?.noIOMMU == false)
        #expect(
            report.iommuGroup?.members == [
                .init(address: "0000:03:00.0", driver: "vfio-pci"), .init(address: "0000:03:00.1", driver: "snd_hda_intel"),
            ])
        guard case let .inspected(summary)? = report.vfio else {
            Issue.record("expected VFIO regions, got \(String(describing: report.vfio))")
            return
        }
        #expect(summary.irqs.first?.count == 9)
        let json = jsonText(report)
        #expect(json.contains("\"vfioNode\" : \"/dev/vfio/12\""))
        #expect(json.contains("\"driverOverride\" : null"))
        // A standard capability has no version, and says so rather than leaving the key out.
        #expect(json.contains("\"version\" : null"))
    }

    @Test func vfioFailureIsShownNotThrown() throws {
        let host = try makeHost()
        let report = try DeviceReport.read(
            try PCIAddress(parsing: "0000:03:00.0"), discovery: host.discovery, names: PCINameDatabase(),
            vfio: FakeInspector(fail: true))
        guard case let .failed(reason)? = report.vfio else {
            Issue.record("expected a failure")
            return
        }
        #expect(reason == "group 12 is in use by another process")
        #expect(jsonText(report).contains("\"error\" : \"group 12 is in use by another process\""))
    }

    @Test func inspectorIsNotAskedAboutDevicesOffVFIO() throws {
        let host = try makeHost()
        let report = try DeviceReport.read(
            try PCIAddress(parsing: "0000:03:00.1"), discovery: host.discovery, names: PCINameDatabase(),
            vfio: FakeInspector(fail: true))
        #expect(report.vfio == nil)
    }

    @Test func noIOMMUGroupNodeIsRecognised() throws {
        let host = try FakeHost()
        host.addDriver("vfio-pci")
        host.addDevice("0000:00:03.0", group: 0, driver: "vfio-pci")
        host.mkdir("dev/vfio")
        host.write("dev/vfio/noiommu-0", "")
        let report = try DeviceReport.read(try PCIAddress(parsing: "0000:00:03.0"), discovery: host.discovery, names: PCINameDatabase())
        #expect(report.iommuGroup?.noIOMMU == true)
        #expect(report.iommuGroup?.vfioNode == "/dev/vfio/noiommu-0")
    }
}
