import Testing
@testable import PCI

@Suite struct InterruptCapabilityTests {
    @Test func decodes32BitMSIWithoutMasking() throws {
        var builder = ConfigBuilder()
        // Enabled, 4 vectors capable (MMC=2), 2 enabled (MME=1).
        builder.addCapability(0x05, at: 0x50, body: le16(0x0015) + le32(0xfee0_300c) + le16(0x4189))
        let msi = try MSICapability(builder.config, at: 0x50)
        #expect(msi.isEnabled)
        #expect(msi.multipleMessageCapable == 4)
        #expect(msi.multipleMessageEnable == 2)
        #expect(!msi.is64Bit && !msi.hasPerVectorMasking && !msi.hasExtendedMessageData)
        #expect(msi.messageAddress == 0xfee0_300c)
        #expect(msi.messageData == 0x4189)
        #expect(msi.maskBits == nil && msi.pendingBits == nil)
        #expect(msi.controlOffset == 0x52 && msi.dataOffset == 0x58)
        #expect(msi.upperAddressOffset == nil && msi.maskBitsOffset == nil && msi.pendingBitsOffset == nil)
    }

    @Test func decodes64BitMSIWithPerVectorMasking() throws {
        var builder = ConfigBuilder()
        // 32 vectors capable (MMC=5), 8 enabled (MME=3), 64-bit, per-vector masking, extended data.
        let control: UInt16 = 0x0001 << 9 | 1 << 8 | 1 << 7 | 3 << 4 | 5 << 1
        builder.addCapability(
            0x05, at: 0x60,
            body: le16(control) + le32(0xfee0_0000) + le32(0x0000_0001) + le16(0x0021) + [0, 0] + le32(0x0000_00f0)
                + le32(0x0000_0010))
        let msi = try MSICapability(builder.config, at: 0x60)
        #expect(!msi.isEnabled)
        #expect(msi.multipleMessageCapable == 32 && msi.multipleMessageEnable == 8)
        #expect(msi.is64Bit && msi.hasPerVectorMasking && msi.hasExtendedMessageData)
        #expect(msi.messageAddress == 0x1_fee0_0000)
        #expect(msi.messageData == 0x0021)
        #expect(msi.maskBits == 0xf0 && msi.pendingBits == 0x10)
        #expect(msi.upperAddressOffset == 0x68 && msi.dataOffset == 0x6c)
        #expect(msi.maskBitsOffset == 0x70 && msi.pendingBitsOffset == 0x74)
        #expect(msi.description.contains("8/32 vectors"))
    }

    @Test func msiDecodingChecksTheIDAndTheBytesHeld() throws {
        var builder = ConfigBuilder()
        builder.addCapability(0x01, at: 0x40, body: le16(0x0003))
        let config = try builder.config
        #expect(throws: ConfigSpaceError.unexpectedCapability(offset: 0x40, expected: "MSI (0x05)", found: "Power Management (0x01)")) {
            try MSICapability(config, at: 0x40)
        }
        var short = ConfigBuilder(size: 0x68)
        short.addCapability(0x05, at: 0x60, body: le16(1 << 7 | 1 << 8))  // 64-bit + masking needs 0x60..0x77
        #expect(throws: ConfigSpaceError.unavailable(offset: 0x68, width: 4)) { try MSICapability(short.config, at: 0x60) }
    }

    @Test func decodesMSIX() throws {
        var builder = ConfigBuilder()
        builder.addCapability(0x11, at: 0x80, body: le16(0xc7ff) + le32(0x0000_2000) + le32(0x0000_3004))
        let msix = try MSIXCapability(builder.config, at: 0x80)
        #expect(msix.tableSize == 2048)
        #expect(msix.isEnabled && msix.isFunctionMasked)
        #expect(msix.table == MSIXCapability.Location(bar: 0, offset: 0x2000))
        #expect(msix.pendingBitArray == MSIXCapability.Location(bar: 4, offset: 0x3000))
        #expect(msix.tableByteCount == 2048 * 16)
        #expect(msix.pendingBitArrayByteCount == 256)
        #expect(msix.controlOffset == 0x82)
        #expect(msix.description == "MSI-X: enabled, 2048 vectors, table at BAR0+0x2000, PBA at BAR4+0x3000, function masked")
    }

    @Test func msixWithOneVectorAndTheBIRInTheLowBits() throws {
        var builder = ConfigBuilder()
        builder.addCapability(0x11, at: 0xb0, body: le16(0x0000) + le32(0x000f_0002) + le32(0x0000_0805))
        let msix = try MSIXCapability(builder.config, at: 0xb0)
        #expect(msix.tableSize == 1 && !msix.isEnabled && !msix.isFunctionMasked)
        #expect(msix.table == MSIXCapability.Location(bar: 2, offset: 0xf_0000))
        #expect(msix.pendingBitArray == MSIXCapability.Location(bar: 5, offset: 0x800))
        #expect(msix.pendingBitArrayByteCount == 8)
    }

    @Test func msixDecodingChecksTheID() throws {
        var builder = ConfigBuilder()
        builder.addCapability(0x05, at: 0x50)
        #expect(throws: ConfigSpaceError.self) { try MSIXCapability(builder.config, at: 0x50) }
    }
}
