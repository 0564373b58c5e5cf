/// Intel's Scalable I/O Virtualization DVSEC (vendor 0x8086, DVSEC ID 5), which says whether the
/// function has an Interrupt Message Store.
public struct ScalableIOVCapability: Hashable, Sendable, Encodable, CustomStringConvertible {
    public static let dvsecVendorID: UInt16 = 0x8086
    public static let dvsecID: UInt16 = 5
    /// The structure is 0x18 bytes: the IMS bit's register is its last.
    static let minimumLength = 0x18

    /// The DVSEC headers this structure sits in.
    public let dvsec: DVSECCapability
    /// DVSEC+0x0a.
    public let functionDependencyLink: Int
    /// DVSEC+0x0b bit 0: every function of the device has the same SIOV behaviour.
    public let isHomogeneous: Bool
    /// DVSEC+0x0c: bit n set means pages of 2^(n+12) bytes are supported.
    public let supportedPageSizes: UInt32
    /// DVSEC+0x10.
    public let systemPageSize: UInt32
    /// DVSEC+0x14 bit 0: the function supports an Interrupt Message Store.
    public let isIMSSupported: Bool

    /// Whether `dvsec` is a Scalable IOV structure (vendor 0x8086, DVSEC ID 5).
    public static func matches(_ dvsec: DVSECCapability) -> Bool {
        dvsec.vendorID == dvsecVendorID && dvsec.dvsecID == dvsecID
    }

    /// Decodes the Scalable IOV structure of `dvsec`.
    ///
    /// - Throws: ``ConfigSpaceError/unexpectedCapability(offset:expected:found:)`` for another
    ///   vendor's or ID's DVSEC; ``ConfigSpaceError/malformed(offset:reason:)`` when its length is
    ///   too short to hold the fields; ``ConfigSpaceError/unavailable(offset:width:)`` when not held.
    public init(_ config: ConfigSpace, dvsec: DVSECCapability) throws(ConfigSpaceError) {
        guard Self.matches(dvsec) else {
            throw .unexpectedCapability(
                offset: dvsec.offset, expected: "Intel Scalable IOV DVSEC (vendor 0x8086, ID 5)",
                found: "DVSEC vendor 0x\(hexString(dvsec.vendorID, width: 4)) ID 0x\(hexString(dvsec.dvsecID, width: 4))")
        }
        guard dvsec.length >= Self.minimumLength else {
            throw .malformed(
                offset: dvsec.offset + 4,
                reason: "the Scalable IOV DVSEC is \(dvsec.length) bytes long, shorter than its \(Self.minimumLength)")
        }
        self.dvsec = dvsec
        let base = dvsec.offset
        functionDependencyLink = Int(try config.uint8(at: base + 0x0a))
        isHomogeneous = try config.uint8(at: base + 0x0b).bit(0)
        supportedPageSizes = try config.uint32(at: base + 0x0c)
        systemPageSize = try config.uint32(at: base + 0x10)
        isIMSSupported = try config.uint32(at: base + 0x14).bit(0)
    }

    /// The function's Scalable IOV DVSEC, if it has one; throws only if it has one that cannot be
    /// decoded.
    public static func find(in config: ConfigSpace, capabilities: Capabilities) throws(ConfigSpaceError) -> Self? {
        for entry in capabilities.all(.designatedVendorSpecific) {
            let dvsec = try DVSECCapability(config, at: entry.offset)
            if matches(dvsec) {
                return try ScalableIOVCapability(config, dvsec: dvsec)
            }
        }
        return nil
    }

    public var description: String {
        "Intel Scalable IOV: IMS \(isIMSSupported ? "supported" : "not supported")"
            + (isHomogeneous ? ", homogeneous" : "") + ", page sizes 0x\(String(supportedPageSizes, radix: 16)) "
            + "(system 0x\(String(systemPageSize, radix: 16)))"
    }
}
