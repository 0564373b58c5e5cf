/// A standard (conventional PCI) capability ID, the byte at the start of each entry of the
/// chain that starts at the header's capability pointer.
public struct CapabilityID: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let powerManagement = CapabilityID(rawValue: 0x01)
    public static let agp = CapabilityID(rawValue: 0x02)
    public static let vitalProductData = CapabilityID(rawValue: 0x03)
    public static let slotIdentification = CapabilityID(rawValue: 0x04)
    public static let msi = CapabilityID(rawValue: 0x05)
    public static let compactPCIHotSwap = CapabilityID(rawValue: 0x06)
    public static let pciX = CapabilityID(rawValue: 0x07)
    public static let hyperTransport = CapabilityID(rawValue: 0x08)
    public static let vendorSpecific = CapabilityID(rawValue: 0x09)
    public static let debugPort = CapabilityID(rawValue: 0x0a)
    public static let compactPCIResourceControl = CapabilityID(rawValue: 0x0b)
    public static let hotPlug = CapabilityID(rawValue: 0x0c)
    public static let subsystemID = CapabilityID(rawValue: 0x0d)
    public static let agp8x = CapabilityID(rawValue: 0x0e)
    public static let secureDevice = CapabilityID(rawValue: 0x0f)
    public static let pciExpress = CapabilityID(rawValue: 0x10)
    public static let msix = CapabilityID(rawValue: 0x11)
    public static let sataConfiguration = CapabilityID(rawValue: 0x12)
    public static let advancedFeatures = CapabilityID(rawValue: 0x13)
    public static let enhancedAllocation = CapabilityID(rawValue: 0x14)
    public static let flatteningPortalBridge = CapabilityID(rawValue: 0x15)

    /// The name the PCI Code and ID Assignment specification gives the ID, or `nil` if it
    /// assigns none.
    public var name: String? {
        switch rawValue {
        case 0x01: "Power Management"
        case 0x02: "AGP"
        case 0x03: "Vital Product Data"
        case 0x04: "Slot Identification"
        case 0x05: "MSI"
        case 0x06: "CompactPCI Hot Swap"
        case 0x07: "PCI-X"
        case 0x08: "HyperTransport"
        case 0x09: "Vendor-Specific"
        case 0x0a: "Debug Port"
        case 0x0b: "CompactPCI Central Resource Control"
        case 0x0c: "PCI Hot-Plug"
        case 0x0d: "Subsystem ID"
        case 0x0e: "AGP 8x"
        case 0x0f: "Secure Device"
        case 0x10: "PCI Express"
        case 0x11: "MSI-X"
        case 0x12: "SATA Configuration"
        case 0x13: "Advanced Features"
        case 0x14: "Enhanced Allocation"
        case 0x15: "Flattening Portal Bridge"
        default: nil
        }
    }

    /// The name and the hex ID, e.g. `MSI-X (0x11)`.
    public var description: String { "\(name ?? "Unknown capability") (0x\(hexString(rawValue, width: 2)))" }
}
