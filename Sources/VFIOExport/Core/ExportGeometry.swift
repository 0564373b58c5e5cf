/// What an export offers its clients, fixed when the export is made: the shape a frontend
/// reports to its kernel or protocol (ublk's `ublk_param_basic`/`_discard`, NBD's export size,
/// flags and `NBD_INFO_BLOCK_SIZE`).
public struct ExportGeometry: Sendable, Equatable, Codable {
    /// Bytes per logical block: the smallest unit a request may address.
    public var blockSize: Int
    /// Logical blocks in the export.
    public var blockCount: UInt64
    /// The most one request may transfer, in bytes (the controller's MDTS), a multiple of `blockSize`.
    public var maxTransfer: Int
    /// TRIM is served (NVMe Dataset Management, deallocate).
    public var canTrim: Bool
    /// WRITE_ZEROES is served (NVMe Write Zeroes: ONCS bit 3).
    public var canWriteZeroes: Bool
    /// The device has a volatile write cache (Identify Controller VWC): FLUSH and FUA matter.
    public var volatileCache: Bool
    /// Writes, trims and write-zeroes are refused with EPERM.
    public var readOnly: Bool
    /// Export queues (each served by its own NVMe I/O queue pair and owner thread).
    public var queues: Int
    /// Requests in flight per export queue at most (tags 0 ..< depth).
    public var queueDepth: Int

    public init(blockSize: Int, blockCount: UInt64, maxTransfer: Int, canTrim: Bool, canWriteZeroes: Bool,
                volatileCache: Bool, readOnly: Bool, queues: Int, queueDepth: Int) {
        self.blockSize = blockSize
        self.blockCount = blockCount
        self.maxTransfer = maxTransfer
        self.canTrim = canTrim
        self.canWriteZeroes = canWriteZeroes
        self.volatileCache = volatileCache
        self.readOnly = readOnly
        self.queues = queues
        self.queueDepth = queueDepth
    }

    /// The export's size in bytes.
    public var bytes: UInt64 { blockCount * UInt64(blockSize) }
}
