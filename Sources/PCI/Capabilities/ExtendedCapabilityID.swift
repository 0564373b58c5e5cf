/// A PCI Express extended capability ID, the low 16 bits of each header in the chain that
/// starts at config offset 0x100.
public struct ExtendedCapabilityID: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let advancedErrorReporting = ExtendedCapabilityID(rawValue: 0x0001)
    public static let virtualChannel = ExtendedCapabilityID(rawValue: 0x0002)
    public static let deviceSerialNumber = ExtendedCapabilityID(rawValue: 0x0003)
    public static let vendorSpecific = ExtendedCapabilityID(rawValue: 0x000b)
    public static let accessControlServices = ExtendedCapabilityID(rawValue: 0x000d)
    public static let alternativeRoutingID = ExtendedCapabilityID(rawValue: 0x000e)
    public static let addressTranslationServices = ExtendedCapabilityID(rawValue: 0x000f)
    public static let singleRootIOV = ExtendedCapabilityID(rawValue: 0x0010)
    public static let pageRequest = ExtendedCapabilityID(rawValue: 0x0013)
    public static let resizableBAR = ExtendedCapabilityID(rawValue: 0x0015)
    public static let processAddressSpaceID = ExtendedCapabilityID(rawValue: 0x001b)
    public static let designatedVendorSpecific = ExtendedCapabilityID(rawValue: 0x0023)

    /// The name the PCI Express specification gives the ID, or `nil` if it assigns none.
    public var name: String? {
        switch rawValue {
        case 0x0001: "Advanced Error Reporting"
        case 0x0002: "Virtual Channel"
        case 0x0003: "Device Serial Number"
        case 0x0004: "Power Budgeting"
        case 0x0005: "Root Complex Link Declaration"
        case 0x0006: "Root Complex Internal Link Control"
        case 0x0007: "Root Complex Event Collector Endpoint Association"
        case 0x0008: "Multi-Function Virtual Channel"
        case 0x0009: "Virtual Channel (MFVC present)"
        case 0x000a: "RCRB Header"
        case 0x000b: "Vendor-Specific Extended"
        case 0x000c: "Configuration Access Correlation"
        case 0x000d: "Access Control Services"
        case 0x000e: "Alternative Routing-ID Interpretation"
        case 0x000f: "Address Translation Services"
        case 0x0010: "Single Root I/O Virtualization"
        case 0x0011: "Multi-Root I/O Virtualization"
        case 0x0012: "Multicast"
        case 0x0013: "Page Request Interface"
        case 0x0015: "Resizable BAR"
        case 0x0016: "Dynamic Power Allocation"
        case 0x0017: "TPH Requester"
        case 0x0018: "Latency Tolerance Reporting"
        case 0x0019: "Secondary PCI Express"
        case 0x001a: "Protocol Multiplexing"
        case 0x001b: "Process Address Space ID"
        case 0x001c: "LN Requester"
        case 0x001d: "Downstream Port Containment"
        case 0x001e: "L1 PM Substates"
        case 0x001f: "Precision Time Measurement"
        case 0x0020: "M-PCIe"
        case 0x0021: "FRS Queueing"
        case 0x0022: "Readiness Time Reporting"
        case 0x0023: "Designated Vendor-Specific"
        case 0x0024: "VF Resizable BAR"
        case 0x0025: "Data Link Feature"
        case 0x0026: "Physical Layer 16.0 GT/s"
        case 0x0027: "Lane Margining at the Receiver"
        case 0x0028: "Hierarchy ID"
        case 0x0029: "Native PCIe Enclosure Management"
        case 0x002a: "Physical Layer 32.0 GT/s"
        case 0x002b: "Alternate Protocol"
        case 0x002c: "System Firmware Intermediary"
        case 0x002d: "Shadow Functions"
        case 0x002e: "Data Object Exchange"
        case 0x002f: "Device 3"
        case 0x0030: "Integrity and Data Encryption"
        case 0x0031: "Physical Layer 64.0 GT/s"
        case 0x0032: "Flit Logging"
        case 0x0033: "Flit Performance Measurement"
        case 0x0034: "Flit Error Injection"
        default: nil
        }
    }

    /// The name and the hex ID, e.g. `Process Address Space ID (0x001b)`.
    public var description: String {
        "\(name ?? "Unknown extended capability") (0x\(hexString(rawValue, width: 4)))"
    }
}
