/// The PCI Express capability (ID 0x10): what kind of PCIe function this is and its link.
public struct PCIExpressCapability: Hashable, Sendable, Encodable, CustomStringConvertible {
    /// A link's capabilities and current state.
    public struct Link: Hashable, Sendable, Encodable {
        /// Link Capabilities bits 3:0.
        public let maxSpeed: PCIeLinkSpeed
        /// Link Capabilities bits 9:4, in lanes.
        public let maxWidth: Int
        /// Link Capabilities bits 31:24.
        public let portNumber: Int
        /// Link Status bits 3:0.
        public let currentSpeed: PCIeLinkSpeed
        /// Link Status bits 9:4, in lanes (0 when the link is down).
        public let negotiatedWidth: Int
    }

    /// Config offset of the capability.
    public let offset: Int
    /// Capability version, PCI Express Capabilities bits 3:0 (1 or 2).
    public let version: Int
    public let deviceType: PCIeDeviceType
    /// Bit 8: the port is connected to a slot (root and downstream ports).
    public let isSlotImplemented: Bool
    /// Bits 13:9: the MSI/MSI-X vector this capability's events use.
    public let interruptMessageNumber: Int
    /// Device Capabilities bits 2:0, in bytes (128–4096).
    public let maxPayloadSizeSupported: Int
    /// Device Capabilities bit 28.
    public let supportsFunctionLevelReset: Bool
    /// Device Control bits 7:5, in bytes.
    public let maxPayloadSize: Int
    /// Device Control bits 14:12, in bytes.
    public let maxReadRequestSize: Int
    /// The link registers, `nil` for types without a link (see ``PCIeDeviceType/hasLink``).
    public let link: Link?

    /// Offset of Device Control; bit 15 there starts a function-level reset.
    public var deviceControlOffset: Int { offset + 8 }

    /// Decodes the PCI Express capability at `offset`; throws if it is another capability or
    /// the registers it decodes are not held.
    public init(_ config: ConfigSpace, at offset: Int) throws(ConfigSpaceError) {
        try config.expectCapability(.pciExpress, at: offset)
        self.offset = offset
        let flags = try config.uint16(at: offset + 2)
        version = Int(flags & 0xf)
        deviceType = PCIeDeviceType(rawValue: UInt8(flags >> 4 & 0xf))
        isSlotImplemented = flags.bit(8)
        interruptMessageNumber = Int(flags >> 9 & 0x1f)
        let deviceCapabilities = try config.uint32(at: offset + 4)
        maxPayloadSizeSupported = 128 << Int(deviceCapabilities & 7)
        supportsFunctionLevelReset = deviceCapabilities.bit(28)
        let deviceControl = try config.uint16(at: offset + 8)
        maxPayloadSize = 128 << Int(deviceControl >> 5 & 7)
        maxReadRequestSize = 128 << Int(deviceControl >> 12 & 7)
        if deviceType.hasLink {
            let capabilities = try config.uint32(at: offset + 0x0c)
            let status = try config.uint16(at: offset + 0x12)
            link = Link(
                maxSpeed: PCIeLinkSpeed(rawValue: UInt8(capabilities & 0xf)), maxWidth: Int(capabilities >> 4 & 0x3f),
                portNumber: Int(capabilities >> 24),
                currentSpeed: PCIeLinkSpeed(rawValue: UInt8(status & 0xf)), negotiatedWidth: Int(status >> 4 & 0x3f))
        } else {
            link = nil
        }
    }

    public var description: String {
        var text =
            "PCI Express v\(version) \(deviceType)\(isSlotImplemented ? " (slot)" : ""), "
            + "interrupt message \(interruptMessageNumber), max payload \(maxPayloadSize)/\(maxPayloadSizeSupported) bytes, "
            + "max read request \(maxReadRequestSize) bytes\(supportsFunctionLevelReset ? ", FLR" : "")"
        if let link {
            text +=
                "; link: port \(link.portNumber), \(link.currentSpeed) x\(link.negotiatedWidth) "
                + "(capable of \(link.maxSpeed) x\(link.maxWidth))"
        }
        return text
    }
}
