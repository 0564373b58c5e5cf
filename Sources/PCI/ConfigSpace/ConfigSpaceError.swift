/// Why a configuration-space read or decode failed. Each case names the offending offset.
public enum ConfigSpaceError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The `width`-byte access lies at least partly outside 0..<4096.
    case outOfBounds(offset: Int, width: Int)
    /// The byte at `offset` (part of a `width`-byte access) is not held by the source, e.g. a
    /// dump that stops before it.
    case unavailable(offset: Int, width: Int)
    /// More than 4096 bytes were supplied.
    case tooLarge(byteCount: Int)
    /// A decoder was pointed at a capability whose ID is not the one it decodes.
    case unexpectedCapability(offset: Int, expected: String, found: String)
    /// The register at `offset` holds a value the specification does not allow.
    case malformed(offset: Int, reason: String)

    public var description: String {
        switch self {
        case let .outOfBounds(offset, width):
            "a \(width)-byte config access at 0x\(hexString(offset, width: 3)) lies outside the 4096-byte config space"
        case let .unavailable(offset, width):
            "config byte 0x\(hexString(offset, width: 3)) (of a \(width)-byte read) is unavailable: "
                + "the source does not hold it; take a fuller dump (lspci -xxxx) or read the device's config file"
        case let .tooLarge(byteCount):
            "\(byteCount) bytes is more than the 4096 a PCI config space can hold"
        case let .unexpectedCapability(offset, expected, found):
            "the capability at 0x\(hexString(offset, width: 3)) is \(found), not \(expected)"
        case let .malformed(offset, reason):
            "config register 0x\(hexString(offset, width: 3)) is malformed: \(reason)"
        }
    }

    /// The config offset the error names (4096 for ``tooLarge(byteCount:)``).
    public var offset: Int {
        switch self {
        case let .outOfBounds(offset, _), let .unavailable(offset, _), let .unexpectedCapability(offset, _, _),
            let .malformed(offset, _):
            offset
        case .tooLarge: ConfigSpace.maximumSize
        }
    }
}
