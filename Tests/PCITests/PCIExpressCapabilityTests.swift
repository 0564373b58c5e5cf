import Testing
@testable import PCI

@Suite struct PCIExpressCapabilityTests {
    /// A PCIe capability body: flags, DevCap, DevCtl, DevSta, LnkCap, LnkCtl, LnkSta.
    static func body(
        flags: UInt16, deviceCapabilities: UInt32, deviceControl: UInt16, linkCapabilities: UInt32,
        linkStatus: UInt16
    ) -> [UInt8] {
        le16(flags) + le32(deviceCapabilities) + le16(deviceControl) + le16(0) + le32(linkCapabilities) + le16(0)
            + le16(linkStatus) + [UInt8](repeating: 0, count: 0x2c)
    }

    @Test func decodesARootPortWithItsLink() throws {
        var builder = ConfigBuilder(headerType: 1)
        // v2 root port with a slot, interrupt message 3; MPS supported 256, FLR; MPS 128, MRRS 512;
        // link: port 8, 8GT/s x16 capable, running 2.5GT/s x4.
        let flags: UInt16 = 2 | 4 << 4 | 1 << 8 | 3 << 9
        builder.addCapability(
            0x10, at: 0x60,
            body: Self.body(
                flags: flags, deviceCapabilities: 1 | 1 << 28, deviceControl: 0 << 5 | 2 << 12,
                linkCapabilities: 3 | 16 << 4 | 8 << 24, linkStatus: 1 | 4 << 4))
        let pcie = try PCIExpressCapability(builder.config, at: 0x60)
        #expect(pcie.version == 2)
        #expect(pcie.deviceType == .rootPort)
        #expect(pcie.deviceType.description == "Root Port")
        #expect(pcie.isSlotImplemented)
        #expect(pcie.interruptMessageNumber == 3)
        #expect(pcie.maxPayloadSizeSupported == 256 && pcie.supportsFunctionLevelReset)
        #expect(pcie.maxPayloadSize == 128 && pcie.maxReadRequestSize == 512)
        let link = try #require(pcie.link)
        #expect(link.maxSpeed.description == "8GT/s" && link.maxSpeed.gigatransfersPerSecond == 8)
        #expect(link.maxWidth == 16 && link.portNumber == 8)
        #expect(link.currentSpeed.description == "2.5GT/s" && link.negotiatedWidth == 4)
        #expect(pcie.deviceControlOffset == 0x68)
    }

    @Test func rootComplexIntegratedEndpointsHaveNoLink() throws {
        var builder = ConfigBuilder()
        builder.addCapability(
            0x10, at: 0x40,
            body: Self.body(
                flags: 2 | 9 << 4, deviceCapabilities: 0, deviceControl: 0, linkCapabilities: 0xffff_ffff,
                linkStatus: 0xffff))
        let pcie = try PCIExpressCapability(builder.config, at: 0x40)
        #expect(pcie.deviceType == .rootComplexIntegratedEndpoint)
        #expect(pcie.link == nil)
        #expect(!PCIeDeviceType.rootComplexEventCollector.hasLink && PCIeDeviceType.endpoint.hasLink)
    }

    @Test func namesLinkSpeedsAndDeviceTypes() {
        #expect(
            (0...7).map { PCIeLinkSpeed(rawValue: $0).description } == [
                "unknown", "2.5GT/s", "5GT/s", "8GT/s", "16GT/s", "32GT/s", "64GT/s", "unknown",
            ])
        #expect(PCIeLinkSpeed(rawValue: 9).gigatransfersPerSecond == nil)
        #expect(PCIeDeviceType(rawValue: 0xc).description == "Unknown type 12")
        #expect(PCIeDeviceType.pciToPCIeBridge.description == "PCI/PCI-X to PCI-Express Bridge")
    }

    @Test func decodesPowerManagement() throws {
        var builder = ConfigBuilder()
        // v3, D1 and D2, PME from D0, D3hot and D3cold; now D3hot, no soft reset, PME enabled and set.
        builder.addCapability(0x01, at: 0x40, body: le16(3 | 1 << 9 | 1 << 10 | 0b11001 << 11) + le16(3 | 1 << 3 | 1 << 8 | 1 << 15))
        let pm = try PowerManagementCapability(builder.config, at: 0x40)
        #expect(pm.version == 3)
        #expect(pm.supportsD1 && pm.supportsD2)
        #expect(pm.pmeSupport == 0b11001)
        #expect(pm.powerState == .d3hot)
        #expect(pm.noSoftReset && pm.isPMEEnabled && pm.isPMEStatusSet)
        #expect(pm.controlStatusOffset == 0x44)
        #expect(pm.description.contains("PME from D0/D3hot/D3cold"))
    }
}
