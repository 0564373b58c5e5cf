/// An inclusive range of IOVAs, as both the type1 IOVA-range capability and iommufd's
/// `iommu_iova_range` report them.
public struct IOVARange: Sendable, Equatable, CustomStringConvertible {
    /// The range's lowest IOVA.
    public var first: UInt64
    /// The range's highest IOVA, included.
    public var last: UInt64

    /// The range `first ... last`; nothing is checked.
    public init(first: UInt64, last: UInt64) {
        self.first = first
        self.last = last
    }

    /// True when the inclusive range `a ... b` lies wholly inside this one.
    public func contains(_ a: UInt64, _ b: UInt64) -> Bool { a >= first && b <= last }

    /// `[0x0, 0xfedfffff]`, both ends included.
    public var description: String { "[0x\(String(first, radix: 16)), 0x\(String(last, radix: 16))]" }

    /// An x86 host's usable IOVAs with a 48-bit IOMMU: everything but the MSI window
    /// 0xfee00000–0xfeefffff.
    public static let x86Default: [IOVARange] = [
        IOVARange(first: 0, last: 0xfedf_ffff), IOVARange(first: 0xfef0_0000, last: (1 << 48) - 1),
    ]
}
