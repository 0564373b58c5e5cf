#if canImport(Glibc)
import Glibc
#endif
import CVFIO

/// Pages an IOMMU mapping holds, as `pin_user_pages` holds them: a second mapping of the same
/// shared pages, made when the mapping was, so the device reaches them whatever the process
/// does with its own mapping afterwards. Unmapped when the last IOMMU mapping that holds it
/// (both halves of a split one) is removed.
final class PinnedPages: @unchecked Sendable {
    /// The mirror's first byte.
    let address: UnsafeMutableRawPointer
    let length: Int

    /// Mirrors the shared mapping at `address`; nil when it cannot be mirrored.
    init?(mirroring address: UnsafeMutableRawPointer, length: Int) {
        guard let mirror = cvfio_mirror(address, length), mirror != MAP_FAILED else { return nil }
        self.address = mirror
        self.length = length
    }

    deinit { Glibc.munmap(address, length) }
}

/// Where an IOMMU mapping's first byte sits in the pages it pinned.
struct PinnedRange: Sendable, Equatable {
    let pages: PinnedPages
    let offset: UInt64

    /// The host address of byte `at` of the mapping.
    func address(at byte: UInt64) -> UInt64 { UInt64(UInt(bitPattern: pages.address)) + offset + byte }

    static func == (a: Self, b: Self) -> Bool { a.pages === b.pages && a.offset == b.offset }
}
