@testable import PCI

/// Synthetic devices the tests share, built without the corpus.
enum Fixtures {
    /// A 4096-byte endpoint with every capability this module decodes:
    /// PM 0x40 → MSI 0x50 (64-bit, masking) → PCIe 0x70 → MSI-X 0xb0;
    /// AER 0x100 → SR-IOV 0x140 → ATS 0x180 → PASID 0x190 → DVSEC (Scalable IOV, IMS) 0x1a0.
    static var richDevice: ConfigBuilder {
        var builder = ConfigBuilder(size: 4096, vendorID: 0x8086, deviceID: 0x0b25, classCode: 0x08_80_00)
        builder.set32(0x10, 0xfff4_000c)
        builder.set32(0x14, 0x0000_206f)
        builder.set16(0x2c, 0x8086)
        builder.addCapability(0x01, at: 0x40, body: le16(0x0003) + le16(0x0008))
        builder.addCapability(
            0x05, at: 0x50,
            body: le16(1 << 8 | 1 << 7 | 3 << 1) + le32(0xfee0_0000) + le32(0) + le16(0x41) + [0, 0] + le32(0xff) + le32(0))
        builder.addCapability(
            0x10, at: 0x70,
            body: PCIExpressCapabilityTests.body(
                flags: 2, deviceCapabilities: 2 | 1 << 28, deviceControl: 1 << 5 | 2 << 12,
                linkCapabilities: 4 | 8 << 4, linkStatus: 4 | 8 << 4))
        builder.addCapability(0x11, at: 0xb0, body: le16(0x8008) + le32(0x2000) + le32(0x3000))
        builder.addExtendedCapability(0x0001, version: 2, at: 0x100, body: [UInt8](repeating: 0, count: 0x40))
        var sriov = [UInt8](repeating: 0, count: 0x3c)
        sriov.replaceSubrange(8..<10, with: le16(4))
        sriov.replaceSubrange(10..<12, with: le16(8))
        sriov.replaceSubrange(16..<18, with: le16(1))
        sriov.replaceSubrange(18..<20, with: le16(1))
        sriov.replaceSubrange(22..<24, with: le16(0x0b26))
        builder.addExtendedCapability(0x0010, at: 0x140, body: sriov)
        builder.addExtendedCapability(0x000f, at: 0x180, body: le16(0x0060) + le16(0x8000))
        builder.addExtendedCapability(0x001b, at: 0x190, body: le16(0x1404) + le16(0x0005))
        builder.addExtendedCapability(0x0023, at: 0x1a0, body: VirtualizationCapabilityTests.siov(ims: true))
        return builder
    }

    /// `richDevice` as `lspci -xxxx` would print it, under address `address`.
    static func dumpText(_ builder: ConfigBuilder, address: String = "6a:01.0", title: String = "System peripheral: Intel") -> String {
        var lines = ["\(address) \(title)"]
        for row in stride(from: 0, to: builder.bytes.count, by: 16) {
            let bytes = builder.bytes[row..<min(row + 16, builder.bytes.count)].map { hexString($0, width: 2) }
            lines.append(hexString(row, width: row < 0x100 ? 2 : 3) + ": " + bytes.joined(separator: " "))
        }
        return lines.joined(separator: "\n") + "\n\n"
    }
}
