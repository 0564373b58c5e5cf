/// A capability found in a device's config space, for `vfiokit info`.
public struct CapabilitySummary: Encodable, Equatable, Sendable {
    public enum Space: String, Encodable, Sendable {
        /// In the list that starts at 0x34 (0x14 for CardBus bridges).
        case standard
        /// In the PCIe extended list that starts at 0x100.
        case extended
    }

    public let space: Space
    public let offset: Int
    public let id: Int
    /// The extended capability's version; nil for standard capabilities.
    public let version: Int?
    public let name: String
    /// Decoded fields, one per line (`vectors: 9`, `table: BAR 3 + 0x0`); empty when the
    /// lister only walks.
    public let details: [String]

    public init(space: Space, offset: Int, id: Int, version: Int?, name: String, details: [String] = []) {
        self.space = space
        self.offset = offset
        self.id = id
        self.version = version
        self.name = name
        self.details = details
    }

    private enum CodingKeys: String, CodingKey { case space, offset, id, version, name, details }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(space, forKey: .space)
        try c.encode(offset, forKey: .offset)
        try c.encode(id, forKey: .id)
        try c.encode(version, forKey: .version)
        try c.encode(name, forKey: .name)
        try c.encode(details, forKey: .details)
    }
}

/// Turns config-space bytes into the capabilities `vfiokit info` shows.
///
/// This is the seam to the PCI module's capability walker and decoders (MSI, MSI-X, PCIe,
/// PM, SR-IOV, PASID, ATS, SIOV DVSEC): a lister built on them fills in ``CapabilitySummary/details``.
/// Bytes the host would not let us read are absent, never zero: `config` may be 64 bytes
/// for an unprivileged reader.
public protocol CapabilityLister: Sendable {
    func capabilities(in config: [UInt8]) -> [CapabilitySummary]
}

/// The minimal lister: walks both lists, loop-safe and bounds-checked, and names what it
/// finds without decoding it. Stands in until the PCI module's decoders are wired in.
struct CapabilityWalkLister: CapabilityLister {
    func capabilities(in config: [UInt8]) -> [CapabilitySummary] {
        standard(config) + extended(config)
    }

    private func standard(_ config: [UInt8]) -> [CapabilitySummary] {
        // Status bit 4 says the list exists; header type 2 (CardBus) keeps its pointer at 0x14.
        guard config.count >= 0x40, config[0x06] & 0x10 != 0 else { return [] }
        var pointer = Int(config[(config[0x0e] & 0x7f) == 2 ? 0x14 : 0x34] & 0xfc)
        var seen = Set<Int>()
        var found: [CapabilitySummary] = []
        while pointer >= 0x40, pointer + 1 < config.count, seen.insert(pointer).inserted {
            let id = Int(config[pointer])
            found.append(.init(space: .standard, offset: pointer, id: id, version: nil, name: Self.standardNames[id] ?? "unknown"))
            pointer = Int(config[pointer + 1] & 0xfc)
        }
        return found
    }

    private func extended(_ config: [UInt8]) -> [CapabilitySummary] {
        var offset = 0x100
        var seen = Set<Int>()
        var found: [CapabilitySummary] = []
        while offset >= 0x100, offset + 3 < config.count, seen.insert(offset).inserted {
            let header = config[offset..<offset + 4].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            guard header != 0, header != 0xffff_ffff else { break }
            let id = Int(header & 0xffff)
            found.append(
                .init(space: .extended, offset: offset, id: id, version: Int(header >> 16 & 0xf), name: Self.extendedNames[id] ?? "unknown"))
            offset = Int(header >> 20 & 0xffc)
        }
        return found
    }

    private static let standardNames: [Int: String] = [
        0x01: "Power Management", 0x02: "AGP", 0x03: "VPD", 0x04: "Slot ID", 0x05: "MSI", 0x06: "CompactPCI Hot Swap",
        0x07: "PCI-X", 0x08: "HyperTransport", 0x09: "Vendor Specific", 0x0a: "Debug port", 0x0b: "CompactPCI CRC",
        0x0c: "PCI Hot-plug", 0x0d: "Bridge Subsystem ID", 0x0e: "AGP 8x", 0x0f: "Secure Device", 0x10: "PCI Express",
        0x11: "MSI-X", 0x12: "SATA", 0x13: "Advanced Features", 0x14: "Enhanced Allocation", 0x15: "Flattening Portal Bridge",
    ]

    private static let extendedNames: [Int: String] = [
        0x01: "Advanced Error Reporting", 0x02: "Virtual Channel", 0x03: "Device Serial Number", 0x04: "Power Budgeting",
        0x05: "Root Complex Link Declaration", 0x06: "Root Complex Internal Link Control", 0x07: "Root Complex Event Collector Endpoint Association",
        0x08: "Multi-Function VC", 0x09: "Virtual Channel", 0x0a: "Root Complex Register Block", 0x0b: "Vendor Specific",
        0x0d: "Access Control Services", 0x0e: "Alternative Routing-ID", 0x0f: "Address Translation Services",
        0x10: "Single Root I/O Virtualization", 0x11: "Multi-Root I/O Virtualization", 0x12: "Multicast",
        0x13: "Page Request Interface", 0x15: "Resizable BAR", 0x16: "Dynamic Power Allocation", 0x17: "TPH Requester",
        0x18: "Latency Tolerance Reporting", 0x19: "Secondary PCI Express", 0x1a: "Protocol Multiplexing",
        0x1b: "Process Address Space ID", 0x1c: "LN Requester", 0x1d: "Downstream Port Containment", 0x1e: "L1 PM Substates",
        0x1f: "Precision Time Measurement", 0x23: "Designated Vendor-Specific", 0x24: "VF Resizable BAR",
        0x25: "Data Link Feature", 0x26: "Physical Layer 16.0 GT/s", 0x27: "Lane Margining at the Receiver",
        0x2a: "Physical Layer 32.0 GT/s", 0x2e: "Data Object Exchange", 0x30: "Integrity and Data Encryption",
    ]
}
