/// The Process Address Space ID extended capability (ID 0x001b).
public struct PASIDCapability: Hashable, Sendable, Encodable, CustomStringConvertible {
    /// Config offset of the capability.
    public let offset: Int
    public let version: Int
    /// PASID Capability bit 1.
    public let supportsExecutePermission: Bool
    /// PASID Capability bit 2.
    public let supportsPrivilegedMode: Bool
    /// PASID Capability bits 12:8: PASIDs have up to this many bits (at most 20).
    public let maxPASIDWidth: Int
    /// PASID Control bit 0.
    public let isEnabled: Bool
    /// PASID Control bit 1.
    public let isExecutePermissionEnabled: Bool
    /// PASID Control bit 2.
    public let isPrivilegedModeEnabled: Bool

    /// Decodes the PASID capability at `offset`; throws if it is another capability or not held.
    public init(_ config: ConfigSpace, at offset: Int) throws(ConfigSpaceError) {
        version = Int(try config.expectExtendedCapability(.processAddressSpaceID, at: offset))
        self.offset = offset
        let capabilities = try config.uint16(at: offset + 4)
        let control = try config.uint16(at: offset + 6)
        supportsExecutePermission = capabilities.bit(1)
        supportsPrivilegedMode = capabilities.bit(2)
        maxPASIDWidth = Int(capabilities >> 8 & 0x1f)
        isEnabled = control.bit(0)
        isExecutePermissionEnabled = control.bit(1)
        isPrivilegedModeEnabled = control.bit(2)
    }

    public var description: String {
        "PASID: \(isEnabled ? "enabled" : "disabled"), \(maxPASIDWidth)-bit PASIDs"
            + (supportsExecutePermission ? ", execute" : "") + (supportsPrivilegedMode ? ", privileged" : "")
    }
}
