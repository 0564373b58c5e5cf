/// The Address Translation Services extended capability (ID 0x000f).
public struct ATSCapability: Hashable, Sendable, Encodable, CustomStringConvertible {
    /// Config offset of the capability.
    public let offset: Int
    public let version: Int
    /// ATS Capability bits 4:0 as held; 0 means 32 outstanding invalidations.
    public let invalidateQueueDepth: Int
    /// ATS Capability bit 5.
    public let requiresPageAlignedRequests: Bool
    /// ATS Capability bit 6.
    public let supportsGlobalInvalidate: Bool
    /// ATS Control bits 4:0: the smallest translation is 2^(this + 12) bytes.
    public let smallestTranslationUnit: Int
    /// ATS Control bit 15.
    public let isEnabled: Bool

    /// Decodes the ATS capability at `offset`; throws if it is another capability or not held.
    public init(_ config: ConfigSpace, at offset: Int) throws(ConfigSpaceError) {
        version = Int(try config.expectExtendedCapability(.addressTranslationServices, at: offset))
        self.offset = offset
        let capabilities = try config.uint16(at: offset + 4)
        let control = try config.uint16(at: offset + 6)
        invalidateQueueDepth = Int(capabilities & 0x1f)
        requiresPageAlignedRequests = capabilities.bit(5)
        supportsGlobalInvalidate = capabilities.bit(6)
        smallestTranslationUnit = Int(control & 0x1f)
        isEnabled = control.bit(15)
    }

    public var description: String {
        "ATS: \(isEnabled ? "enabled" : "disabled"), invalidate queue depth "
            + "\(invalidateQueueDepth == 0 ? 32 : invalidateQueueDepth), smallest translation unit \(smallestTranslationUnit)"
            + (supportsGlobalInvalidate ? ", global invalidate" : "")
    }
}
