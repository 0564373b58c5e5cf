/// A run of logical blocks: one Dataset Management range (NVM command set, "Dataset
/// Management – Range Definition"): context attributes in bytes 3:0, the length in blocks in
/// 7:4, the starting LBA in 15:8.
public struct NVMeBlockRange: Sendable, Equatable {
    public var lba: UInt64
    public var blocks: UInt32

    /// The size of one range descriptor; a command carries at most 256 (one 4 KiB page).
    public static let descriptorSize = 16
    public static let maxRanges = 256

    public init(lba: UInt64, blocks: UInt32) {
        self.lba = lba
        self.blocks = blocks
    }

    /// Writes the 16-byte descriptor at `address` (no context attributes).
    @inline(__always)
    public func store(to address: UnsafeMutableRawPointer) {
        address.storeBytes(of: UInt32(0), as: UInt32.self)
        address.storeBytes(of: blocks, toByteOffset: 4, as: UInt32.self)
        address.storeBytes(of: lba, toByteOffset: 8, as: UInt64.self)
    }
}

extension NVMeStatus {
    /// Compare Failure (media and data integrity, SC 85h): the data differed.
    public static let compareFailure = NVMeStatus(codeType: 2, code: 0x85)
}
