/// The Device/Port Type of a PCI Express function (PCI Express Capabilities bits 7:4).
public struct PCIeDeviceType: RawRepresentable, Hashable, Sendable, Encodable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let endpoint = PCIeDeviceType(rawValue: 0x0)
    public static let legacyEndpoint = PCIeDeviceType(rawValue: 0x1)
    public static let rootPort = PCIeDeviceType(rawValue: 0x4)
    public static let upstreamPort = PCIeDeviceType(rawValue: 0x5)
    public static let downstreamPort = PCIeDeviceType(rawValue: 0x6)
    public static let pcieToPCIBridge = PCIeDeviceType(rawValue: 0x7)
    public static let pciToPCIeBridge = PCIeDeviceType(rawValue: 0x8)
    public static let rootComplexIntegratedEndpoint = PCIeDeviceType(rawValue: 0x9)
    public static let rootComplexEventCollector = PCIeDeviceType(rawValue: 0xa)

    /// Whether the function has a link, and so Link Capabilities/Status registers: all types but
    /// the two that live inside the root complex.
    public var hasLink: Bool { self != .rootComplexIntegratedEndpoint && self != .rootComplexEventCollector }

    public var description: String {
        switch self {
        case .endpoint: "Endpoint"
        case .legacyEndpoint: "Legacy Endpoint"
        case .rootPort: "Root Port"
        case .upstreamPort: "Upstream Port"
        case .downstreamPort: "Downstream Port"
        case .pcieToPCIBridge: "PCI-Express to PCI/PCI-X Bridge"
        case .pciToPCIeBridge: "PCI/PCI-X to PCI-Express Bridge"
        case .rootComplexIntegratedEndpoint: "Root Complex Integrated Endpoint"
        case .rootComplexEventCollector: "Root Complex Event Collector"
        default: "Unknown type \(rawValue)"
        }
    }

    /// Encodes as its name, e.g. `"Root Port"`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
