#if canImport(Glibc)
import Glibc
#endif
import VFIODrivers

/// One request a frontend hands its block queue, whatever protocol it came in on: checked
/// against the export's ``BlockGeometry`` when it is built, so a request lies inside the
/// namespace, is whole blocks, fits a tag's buffer and is an operation the export has.
public struct BlockRequest: Equatable, Sendable {
    public enum Operation: Equatable, Sendable {
        case read, write, flush, discard, writeZeroes
    }

    public var operation: Operation
    /// Write (or write zeroes) with Force Unit Access: on the media before it completes.
    public var fua: Bool
    /// A write-zeroes may deallocate the blocks instead of writing them (they read as zeroes
    /// either way): NBD without NBD_CMD_FLAG_NO_HOLE.
    public var unmap = false
    /// First logical block (0 for a flush).
    public var lba: UInt64
    /// Logical blocks (0 for a flush).
    public var blocks: UInt32
    /// Bytes the request moves through its data buffer (reads and writes; 0 otherwise).
    public var bytes: Int
    /// The frontend's tag: the completion comes back under it.
    public var tag: UInt16 = 0
    /// The tag's DMA buffer, which holds (reads and writes) ``bytes`` bytes from its start.
    public var data = NVMeDataRange(deviceAddress: 0, count: 0)

    /// A request for `blocks` blocks at `lba`, checked against `geometry`. Throws the errno to
    /// answer with instead: EPERM for a change to a read-only export, EOPNOTSUPP for an operation
    /// the export does not have, EINVAL for a range that is empty, past the end or over the limit
    /// for its operation. A flush ignores its range.
    @inline(__always)
    public init(_ operation: Operation, fua: Bool = false, lba: UInt64, blocks: UInt32, geometry: BlockGeometry) throws(BlockRequestError) {
        self.operation = operation
        self.fua = fua
        self.lba = 0
        self.blocks = 0
        bytes = 0
        if operation == .flush { return }
        try Self.permit(operation, geometry: geometry)
        guard blocks > 0, lba < geometry.blocks, geometry.blocks - lba >= UInt64(blocks) else { throw BlockRequestError(errno: EINVAL) }
        self.lba = lba
        self.blocks = blocks
        switch operation {
        case .read, .write:
            bytes = Int(blocks) * geometry.blockSize
            guard bytes <= geometry.maxTransfer else { throw BlockRequestError(errno: EINVAL) }
        case .discard:
            guard blocks <= geometry.maxDiscardBlocks! else { throw BlockRequestError(errno: EINVAL) }
        case .writeZeroes:
            guard blocks <= geometry.maxWriteZeroesBlocks! else { throw BlockRequestError(errno: EINVAL) }
        case .flush:
            break
        }
    }

    /// Whether `geometry`'s export takes `operation` at all: EPERM for a change to a read-only
    /// export, EOPNOTSUPP for a discard or write-zeroes it does not have. Frontends call it
    /// before decoding the range, so these answers come first.
    @inline(__always)
    public static func permit(_ operation: Operation, geometry: BlockGeometry) throws(BlockRequestError) {
        if operation == .flush || operation == .read { return }
        if geometry.readOnly { throw BlockRequestError(errno: EPERM) }
        if operation == .discard, geometry.maxDiscardBlocks == nil { throw BlockRequestError(errno: EOPNOTSUPP) }
        if operation == .writeZeroes, geometry.maxWriteZeroesBlocks == nil { throw BlockRequestError(errno: EOPNOTSUPP) }
    }
}

/// The errno a request is answered with instead of being served.
public struct BlockRequestError: Error, Equatable, Sendable {
    public let errno: Int32
    public init(errno: Int32) { self.errno = errno }
}
