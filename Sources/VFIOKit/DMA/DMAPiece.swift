import SystemPackage

/// A DMA buffer as its owner handed it over (``DMABuffer/handOver()``) for a successor: the
/// memfd holding its memory, where the buffer starts in it, its length, and the IOVA the IOMMU
/// still maps it at. The IOMMU mapping outlives the hand-over, so the device keeps reaching the
/// memory while no one owns it.
///
/// A successor (this process, or another that received ``file`` by `SCM_RIGHTS` or from
/// systemd's file descriptor store) gives it to ``DMASpace/adopt(pieces:)`` and then
/// ``DMASpace/claim(_:)`` to own the buffer again, at the same device address. Until adopted,
/// the file is the owner's (the space that handed it over, or the receiver of the descriptor).
public struct DMAPiece: Sendable, Hashable, CustomStringConvertible {
    /// The memfd holding the memory.
    public let file: FileDescriptor
    /// Where the buffer starts in the file, in bytes (a multiple of the page size).
    public let offset: Int64
    /// The buffer's length in bytes (whole pages).
    public let length: Int
    /// The IOVA the IOMMU maps the buffer's first byte at.
    public let deviceAddress: UInt64

    /// A piece as a predecessor described it; ``DMASpace/adopt(pieces:)`` checks it.
    public init(file: FileDescriptor, offset: Int64 = 0, length: Int, deviceAddress: UInt64) {
        self.file = file
        self.offset = offset
        self.length = length
        self.deviceAddress = deviceAddress
    }

    /// `8192 bytes at IOVA 0x3000 (memfd 14 at offset 0)`.
    public var description: String {
        "\(length) bytes at IOVA 0x\(String(deviceAddress, radix: 16)) (memfd \(file.rawValue) at offset \(offset))"
    }
}
