import VFIOKit

/// Bytes of a DMA buffer a command transfers: where the device finds them, and how many.
///
/// A plain description, so that concurrent tasks can each name their part of one buffer. The
/// buffer must outlive every command given a range of it; a range of a freed buffer makes the
/// controller's DMA fault at the IOMMU and the command fail, it never reaches other memory the
/// IOMMU does not map for the device.
public struct NVMeDataRange: Sendable, Equatable {
    public let deviceAddress: UInt64
    public let count: Int

    /// `count` bytes at `deviceAddress`, for a caller that carves a buffer itself.
    public init(deviceAddress: UInt64, count: Int) {
        self.deviceAddress = deviceAddress
        self.count = count
    }

    /// `count` bytes of `buffer` from `offset` (to its end when nil); nil when they do not fit.
    public init?(_ buffer: borrowing DMABuffer, offset: Int = 0, count: Int? = nil) {
        let count = count ?? buffer.count - offset
        guard offset >= 0, count > 0, offset <= buffer.count - count else { return nil }
        deviceAddress = buffer.deviceAddress + UInt64(offset)
        self.count = count
    }
}
