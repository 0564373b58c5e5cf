/// The fields of the common header (offsets 0x00–0x0f) and the IDs that identify a function.
/// Each throws ``ConfigSpaceError/unavailable(offset:width:)`` when the source does not hold it.
extension ConfigSpace {
    public var vendorID: UInt16 { get throws(ConfigSpaceError) { try uint16(at: 0x00) } }
    public var deviceID: UInt16 { get throws(ConfigSpaceError) { try uint16(at: 0x02) } }
    public var command: UInt16 { get throws(ConfigSpaceError) { try uint16(at: 0x04) } }
    public var status: UInt16 { get throws(ConfigSpaceError) { try uint16(at: 0x06) } }
    public var revisionID: UInt8 { get throws(ConfigSpaceError) { try uint8(at: 0x08) } }

    public var classCode: ClassCode {
        get throws(ConfigSpaceError) {
            ClassCode(
                baseClass: try uint8(at: 0x0b), subclass: try uint8(at: 0x0a),
                programmingInterface: try uint8(at: 0x09))
        }
    }

    public var headerType: HeaderType {
        get throws(ConfigSpaceError) { HeaderType(rawValue: try uint8(at: 0x0e)) }
    }

    /// Status bit 4: the function has a standard capability list.
    public static let statusCapabilityListBit: UInt16 = 1 << 4

    /// The subsystem vendor and device IDs: from the header for endpoints (0x2c) and CardBus
    /// bridges (0x40), from the Subsystem ID capability for PCI bridges, `nil` when the function
    /// has none.
    public var subsystem: SubsystemIDs? {
        get throws(ConfigSpaceError) {
            let offset: Int
            switch try headerType.layout {
            case .endpoint: offset = 0x2c
            case .cardBusBridge: offset = 0x40
            case .pciBridge:
                guard let cap = capabilities.first(.subsystemID) else { return nil }
                offset = cap.offset + 4
            case .unknown: return nil
            }
            return SubsystemIDs(vendorID: try uint16(at: offset), deviceID: try uint16(at: offset + 2))
        }
    }
}
