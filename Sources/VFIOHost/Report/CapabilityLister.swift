import PCI

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
    @NullWhenAbsent public internal(set) var version: Int?
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

/// The lister built on the PCI module: its loop-safe, bounds-checked walk and its decoders
/// (MSI, MSI-X, PCIe, PM, SR-IOV, PASID, ATS, DVSEC and the Scalable-IOV DVSEC).
public struct DecodingCapabilityLister: CapabilityLister {
    public init() {}

    public func capabilities(in config: [UInt8]) -> [CapabilitySummary] {
        guard let space = try? ConfigSpace(bytes: config) else { return [] }
        return ConfigSpaceReport.CapabilityEntry.entries(of: space.capabilities, in: space).map { entry in
            CapabilitySummary(
                space: entry.chain == .standard ? .standard : .extended, offset: entry.offset, id: entry.id,
                version: entry.version, name: entry.name,
                details: entry.decoded.map { [$0.description] } ?? entry.decodeError.map { ["undecodable: \($0)"] } ?? [])
        }
    }
}
