/// An inclusive range of IOVAs, as both the type1 IOVA-range capability and iommufd's
/// `iommu_iova_range` report them.
public struct IOVARange: Sendable, Equatable, CustomStringConvertible {
    public var first: UInt64
    public var last: UInt64

    public init(first: UInt64, last: UInt64) {
        self.first = first
        self.last = last
    }

    public func contains(_ a: UInt64, _ b: UInt64) -> Bool { a >= first && b <= last }

    public var description: String { "[0x\(String(first, radix: 16)), 0x\(String(last, radix: 16))]" }

    /// An x86 host's usable IOVAs with a 48-bit IOMMU: everything but the MSI window
    /// 0xfee00000–0xfeefffff.
    public static let x86Default: [IOVARange] = [
        IOVARange(first: 0, last: 0xfedf_ffff), IOVARange(first: 0xfef0_0000, last: (1 << 48) - 1),
    ]
}
