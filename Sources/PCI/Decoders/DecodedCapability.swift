/// A capability decoded into its fields, for the capabilities this module has a decoder for.
public enum DecodedCapability: Hashable, Sendable, Encodable, CustomStringConvertible {
    case powerManagement(PowerManagementCapability)
    case msi(MSICapability)
    case msix(MSIXCapability)
    case pciExpress(PCIExpressCapability)
    case singleRootIOV(SRIOVCapability)
    case addressTranslationServices(ATSCapability)
    case processAddressSpaceID(PASIDCapability)
    case designatedVendorSpecific(DVSECCapability)
    /// A DVSEC that is Intel's Scalable IOV structure.
    case scalableIOV(ScalableIOVCapability)

    /// Decodes a standard capability; `nil` when this module has no decoder for its ID.
    public init?(_ capability: Capability, in config: ConfigSpace) throws(ConfigSpaceError) {
        switch capability.id {
        case .powerManagement: self = .powerManagement(try PowerManagementCapability(config, at: capability.offset))
        case .msi: self = .msi(try MSICapability(config, at: capability.offset))
        case .msix: self = .msix(try MSIXCapability(config, at: capability.offset))
        case .pciExpress: self = .pciExpress(try PCIExpressCapability(config, at: capability.offset))
        default: return nil
        }
    }

    /// Decodes an extended capability; `nil` when this module has no decoder for its ID.
    public init?(_ capability: ExtendedCapability, in config: ConfigSpace) throws(ConfigSpaceError) {
        switch capability.id {
        case .singleRootIOV: self = .singleRootIOV(try SRIOVCapability(config, at: capability.offset))
        case .addressTranslationServices:
            self = .addressTranslationServices(try ATSCapability(config, at: capability.offset))
        case .processAddressSpaceID: self = .processAddressSpaceID(try PASIDCapability(config, at: capability.offset))
        case .designatedVendorSpecific:
            let dvsec = try DVSECCapability(config, at: capability.offset)
            if ScalableIOVCapability.matches(dvsec) {
                self = .scalableIOV(try ScalableIOVCapability(config, dvsec: dvsec))
            } else {
                self = .designatedVendorSpecific(dvsec)
            }
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case let .powerManagement(value): value.description
        case let .msi(value): value.description
        case let .msix(value): value.description
        case let .pciExpress(value): value.description
        case let .singleRootIOV(value): value.description
        case let .addressTranslationServices(value): value.description
        case let .processAddressSpaceID(value): value.description
        case let .designatedVendorSpecific(value): value.description
        case let .scalableIOV(value): "\(value.dvsec); \(value)"
        }
    }

    private enum Kind: String, CodingKey {
        case powerManagement, msi, msix, pciExpress, singleRootIOV, addressTranslationServices, processAddressSpaceID,
            designatedVendorSpecific, scalableIOV
    }

    /// Encodes as one key naming the kind, holding the decoded fields: `{"msix": {...}}`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Kind.self)
        switch self {
        case let .powerManagement(value): try container.encode(value, forKey: .powerManagement)
        case let .msi(value): try container.encode(value, forKey: .msi)
        case let .msix(value): try container.encode(value, forKey: .msix)
        case let .pciExpress(value): try container.encode(value, forKey: .pciExpress)
        case let .singleRootIOV(value): try container.encode(value, forKey: .singleRootIOV)
        case let .addressTranslationServices(value): try container.encode(value, forKey: .addressTranslationServices)
        case let .processAddressSpaceID(value): try container.encode(value, forKey: .processAddressSpaceID)
        case let .designatedVendorSpecific(value): try container.encode(value, forKey: .designatedVendorSpecific)
        case let .scalableIOV(value): try container.encode(value, forKey: .scalableIOV)
        }
    }
}
