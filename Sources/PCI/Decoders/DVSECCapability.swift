/// A Designated Vendor-Specific extended capability (ID 0x0023): a structure a vendor defines,
/// named by that vendor's ID and its own DVSEC ID.
public struct DVSECCapability: Hashable, Sendable, Encodable, CustomStringConvertible {
    /// Config offset of the capability.
    public let offset: Int
    public let version: Int
    /// DVSEC Header 1 bits 15:0: the vendor who defined the structure.
    public let vendorID: UInt16
    /// DVSEC Header 1 bits 19:16.
    public let revision: Int
    /// DVSEC Header 1 bits 31:20: the structure's length in bytes, headers included.
    public let length: Int
    /// DVSEC Header 2 bits 15:0: which of the vendor's structures this is.
    public let dvsecID: UInt16

    /// Decodes the DVSEC headers at `offset`; throws if it is another capability or not held.
    public init(_ config: ConfigSpace, at offset: Int) throws(ConfigSpaceError) {
        version = Int(try config.expectExtendedCapability(.designatedVendorSpecific, at: offset))
        self.offset = offset
        let header1 = try config.uint32(at: offset + 4)
        vendorID = UInt16(header1 & 0xffff)
        revision = Int(header1 >> 16 & 0xf)
        length = Int(header1 >> 20)
        dvsecID = try config.uint16(at: offset + 8)
    }

    public var description: String {
        "DVSEC: vendor 0x\(hexString(vendorID, width: 4)) ID 0x\(hexString(dvsecID, width: 4)) "
            + "revision \(revision), \(length) bytes"
    }
}
