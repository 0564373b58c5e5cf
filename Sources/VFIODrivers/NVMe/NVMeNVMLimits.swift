/// What the I/O Command Set specific Identify Controller data structure for the NVM command
/// set (Identify CNS 06h, CSI 00h; NVM Command Set specification) limits: WZSL at byte 1, DMRL
/// at byte 3, DMRSL at bytes 7:4 and DMSL at bytes 15:8, each 0 when the controller sets no
/// limit. A controller without that structure (before NVMe 2.0) sets none.
public struct NVMeNVMLimits: Sendable, Equatable, Codable {
    /// WZSL: one Write Zeroes covers at most this many bytes (2^WZSL minimum memory pages, as
    /// MDTS counts); nil: no limit beyond the 65,536 blocks NLB can say.
    public let maxWriteZeroesBytes: Int?
    /// DMRL: the most ranges one Dataset Management command should carry (256 when not reported).
    public let maxDeallocateRanges: Int
    /// DMRSL: the most logical blocks one Dataset Management range should cover; nil: no limit.
    public let maxDeallocateRangeBlocks: UInt32?
    /// DMSL: the most logical blocks one Dataset Management command should cover; nil: no limit.
    public let maxDeallocateBlocks: UInt64?

    /// No limits: what a controller without the structure gets.
    public init() {
        maxWriteZeroesBytes = nil
        maxDeallocateRanges = NVMeBlockRange.maxRanges
        maxDeallocateRangeBlocks = nil
        maxDeallocateBlocks = nil
    }

    /// From the structure's page; WZSL counts pages of `minPageSize` bytes (CAP.MPSMIN).
    init(page: UnsafeRawBufferPointer, minPageSize: Int) {
        let wzsl = Int(page[1])
        // A limit past what any transfer could reach is no limit.
        maxWriteZeroesBytes = wzsl == 0 || wzsl > 40 ? nil : minPageSize << wzsl
        maxDeallocateRanges = page[3] == 0 ? NVMeBlockRange.maxRanges : Int(page[3])
        let dmrsl = page.load(fromByteOffset: 4, as: UInt32.self)
        maxDeallocateRangeBlocks = dmrsl == 0 ? nil : dmrsl
        let dmsl = page.load(fromByteOffset: 8, as: UInt64.self)
        maxDeallocateBlocks = dmsl == 0 ? nil : dmsl
    }

    /// The most blocks of `blockSize` bytes one Write Zeroes may cover: WZSL's bytes (at least
    /// one block), and at most the 65,536 blocks NLB can say.
    public func writeZeroesBlocks(blockSize: Int) -> UInt32 {
        let nlb = 65536
        guard let bytes = maxWriteZeroesBytes, blockSize > 0 else { return UInt32(nlb) }
        return UInt32(min(nlb, max(1, bytes / blockSize)))
    }

    /// The most blocks one Dataset Management range may cover: DMRSL, else a range's 32 bits.
    public var deallocateRangeBlocks: UInt32 { maxDeallocateRangeBlocks ?? .max }
}
