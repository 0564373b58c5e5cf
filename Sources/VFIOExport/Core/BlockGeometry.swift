/// What an export presents: the exported namespace's shape and what it can do, whatever the
/// protocol. Each frontend derives its own parameters from it (ublk's SET_PARAMS, NBD's export
/// flags and block size constraints) and checks every request against it (``BlockRequest``).
public struct BlockGeometry: Sendable, Equatable {
    /// Bytes per logical block: a power of two.
    public var blockSize: Int
    /// The size in logical blocks.
    public var blocks: UInt64
    /// The most one read or write may carry, in bytes (the controller's MDTS): the size of each
    /// tag's data buffer.
    public var maxTransfer: Int
    /// The controller has a volatile write cache (NVMe VWC): flushes and FUA are passed on.
    public var volatileWriteCache: Bool
    /// The most blocks one discard may cover (NVMe Dataset Management deallocate); nil: no discard.
    public var maxDiscardBlocks: UInt32?
    /// The most blocks one write-zeroes may cover (NVMe Write Zeroes); nil: not supported.
    public var maxWriteZeroesBlocks: UInt32?
    /// Refuse writes (the export is read-only).
    public var readOnly: Bool

    public init(
        blockSize: Int, blocks: UInt64, maxTransfer: Int, volatileWriteCache: Bool,
        maxDiscardBlocks: UInt32? = nil, maxWriteZeroesBlocks: UInt32? = nil, readOnly: Bool = false
    ) {
        self.blockSize = blockSize
        self.blocks = blocks
        self.maxTransfer = maxTransfer
        self.volatileWriteCache = volatileWriteCache
        self.maxDiscardBlocks = maxDiscardBlocks
        self.maxWriteZeroesBlocks = maxWriteZeroesBlocks
        self.readOnly = readOnly
    }

    /// The size in bytes.
    public var bytes: UInt64 { blocks * UInt64(blockSize) }
}
