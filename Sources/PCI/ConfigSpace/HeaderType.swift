/// The header-type register at config offset 0x0e: the layout of offsets 0x10–0x3f and whether
/// the device has more than one function.
public struct HeaderType: Hashable, Sendable, CustomStringConvertible {
    /// The register as read, including the multi-function bit.
    public let rawValue: UInt8

    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Which header layout offsets 0x10–0x3f follow.
    public enum Layout: Hashable, Sendable {
        /// Type 0: an endpoint, with six BARs.
        case endpoint
        /// Type 1: a PCI-to-PCI bridge, with two BARs.
        case pciBridge
        /// Type 2: a CardBus bridge, with one BAR and its capability pointer at 0x14.
        case cardBusBridge
        /// A type the PCI specifications do not define (3–0x7f).
        case unknown(UInt8)

        /// `endpoint`, `PCI bridge`, `CardBus bridge` or `unknown layout`.
        public var name: String {
            switch self {
            case .endpoint: "endpoint"
            case .pciBridge: "PCI bridge"
            case .cardBusBridge: "CardBus bridge"
            case .unknown: "unknown layout"
            }
        }
    }

    /// The type number, bits 6:0 (0, 1 or 2 for defined layouts).
    public var type: UInt8 { rawValue & 0x7f }

    public var layout: Layout {
        switch type {
        case 0: .endpoint
        case 1: .pciBridge
        case 2: .cardBusBridge
        default: .unknown(type)
        }
    }

    /// Bit 7: the device implements more than one function.
    public var isMultiFunction: Bool { rawValue & 0x80 != 0 }

    /// Where this layout keeps the pointer to the first standard capability: 0x34 for types 0
    /// and 1, 0x14 for CardBus bridges, `nil` for undefined layouts.
    public var capabilityPointerOffset: Int? {
        switch layout {
        case .endpoint, .pciBridge: 0x34
        case .cardBusBridge: 0x14
        case .unknown: nil
        }
    }

    /// How many BAR slots the layout has, starting at 0x10: 6, 2, 1, or 0 when undefined.
    public var barCount: Int {
        switch layout {
        case .endpoint: 6
        case .pciBridge: 2
        case .cardBusBridge: 1
        case .unknown: 0
        }
    }

    /// `00 (endpoint)`, `81 (PCI bridge, multi-function)`, ...
    public var description: String {
        hexString(type, width: 2) + " (" + layout.name + (isMultiFunction ? ", multi-function)" : ")")
    }
}
