/// A PCI Express link speed as Link Capabilities and Link Status encode it (bits 3:0).
public struct PCIeLinkSpeed: RawRepresentable, Hashable, Sendable, Encodable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Gigatransfers per second per lane, `nil` for encodings the specification does not define.
    public var gigatransfersPerSecond: Double? {
        switch rawValue {
        case 1: 2.5
        case 2: 5
        case 3: 8
        case 4: 16
        case 5: 32
        case 6: 64
        default: nil
        }
    }

    /// `2.5GT/s`, `16GT/s`, or `unknown` (as lspci prints them).
    public var description: String {
        switch rawValue {
        case 1: "2.5GT/s"
        case 2: "5GT/s"
        case 3: "8GT/s"
        case 4: "16GT/s"
        case 5: "32GT/s"
        case 6: "64GT/s"
        default: "unknown"
        }
    }

    /// Encodes as its description, e.g. `"8GT/s"`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
