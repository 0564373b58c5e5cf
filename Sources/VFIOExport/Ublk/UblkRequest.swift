#if canImport(Glibc)
import Glibc
#endif
import CUring

/// A request the kernel handed to one tag, decoded from its descriptor and checked against the
/// device: whatever the descriptor says, a decoded request lies inside the namespace, is whole
/// blocks, fits the tag's buffer and is an operation the device advertised.
public struct UblkRequest: Equatable, Sendable {
    public enum Operation: Equatable, Sendable {
        case read, write, flush, discard, writeZeroes
    }

    public var operation: Operation
    /// Write with Force Unit Access: on the media before it completes.
    public var fua: Bool
    /// First logical block (0 for a flush).
    public var lba: UInt64
    /// Logical blocks (0 for a flush).
    public var blocks: UInt32
    /// Bytes the request moves through the tag's buffer (reads and writes; 0 otherwise).
    public var bytes: Int

    /// Decodes a descriptor's fields against `geometry`. Throws the errno to commit instead:
    /// EOPNOTSUPP for an operation the device does not have, EPERM for a change to a read-only
    /// device, EINVAL for a range that is empty, not whole blocks, past the end or over the
    /// request limit.
    @inline(__always)
    public init(opFlags: UInt32, startSector: UInt64, sectors: UInt32, geometry: UblkGeometry) throws(UblkRequestError) {
        let op = opFlags & 0xff
        let flags = opFlags & ~0xff
        switch op {
        case CUBLK_IO_OP_READ: operation = .read
        case CUBLK_IO_OP_WRITE: operation = .write
        case CUBLK_IO_OP_FLUSH: operation = .flush
        case CUBLK_IO_OP_DISCARD: operation = .discard
        case CUBLK_IO_OP_WRITE_ZEROES: operation = .writeZeroes
        default: throw UblkRequestError(errno: EOPNOTSUPP)
        }
        fua = flags & CUBLK_IO_F_FUA != 0
        lba = 0
        blocks = 0
        bytes = 0
        if operation == .flush { return }
        if geometry.readOnly, operation != .read { throw UblkRequestError(errno: EPERM) }
        if operation == .discard, geometry.maxDiscardBlocks == nil { throw UblkRequestError(errno: EOPNOTSUPP) }
        if operation == .writeZeroes, geometry.maxWriteZeroesBlocks == nil { throw UblkRequestError(errno: EOPNOTSUPP) }
        let perBlock = geometry.sectorsPerBlock
        guard sectors > 0, startSector % perBlock == 0, UInt64(sectors) % perBlock == 0 else {
            throw UblkRequestError(errno: EINVAL)
        }
        lba = startSector / perBlock
        blocks = UInt32(UInt64(sectors) / perBlock)
        guard lba < geometry.blocks, geometry.blocks - lba >= UInt64(blocks) else { throw UblkRequestError(errno: EINVAL) }
        switch operation {
        case .read, .write:
            bytes = Int(blocks) * geometry.blockSize
            guard bytes <= geometry.maxTransfer else { throw UblkRequestError(errno: EINVAL) }
        case .discard:
            guard blocks <= geometry.maxDiscardBlocks! else { throw UblkRequestError(errno: EINVAL) }
        case .writeZeroes:
            guard blocks <= geometry.maxWriteZeroesBlocks! else { throw UblkRequestError(errno: EINVAL) }
        case .flush:
            break
        }
    }

    /// Decodes the descriptor at `descriptor`.
    @inline(__always)
    init(_ descriptor: UnsafePointer<cublk_io_desc>, geometry: UblkGeometry) throws(UblkRequestError) {
        let d = descriptor.pointee
        try self.init(opFlags: d.op_flags, startSector: d.start_sector, sectors: d.nr_sectors, geometry: geometry)
    }

    /// The result to commit when the request succeeded: the bytes moved (reads and writes), or 0.
    @inline(__always)
    public var successResult: Int32 { Int32(bytes) }
}

/// The errno a request is answered with instead of being served (committed as `-errno`).
public struct UblkRequestError: Error, Equatable, Sendable {
    public let errno: Int32
}
