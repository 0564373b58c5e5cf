#if canImport(Glibc)
import Glibc
#endif
import CUring

/// A request the kernel handed to one ublk tag, decoded from its descriptor: 512-byte sectors
/// become whole blocks, and the result is checked like every ``BlockRequest``.
extension BlockRequest {
    /// Decodes a descriptor's fields against `geometry`. Throws the errno to commit instead:
    /// EOPNOTSUPP for an operation the device does not have, EPERM for a change to a read-only
    /// device, EINVAL for a range that is empty, not whole blocks, past the end or over the
    /// request limit.
    @inline(__always)
    public init(ublkOpFlags opFlags: UInt32, startSector: UInt64, sectors: UInt32, geometry: BlockGeometry) throws(BlockRequestError) {
        let operation: Operation
        switch opFlags & 0xff {
        case CUBLK_IO_OP_READ: operation = .read
        case CUBLK_IO_OP_WRITE: operation = .write
        case CUBLK_IO_OP_FLUSH: operation = .flush
        case CUBLK_IO_OP_DISCARD: operation = .discard
        case CUBLK_IO_OP_WRITE_ZEROES: operation = .writeZeroes
        default: throw BlockRequestError(errno: EOPNOTSUPP)
        }
        let fua = opFlags & ~0xff & CUBLK_IO_F_FUA != 0
        if operation != .flush {
            try Self.permit(operation, geometry: geometry)
            let perBlock = geometry.sectorsPerBlock
            guard startSector % perBlock == 0, UInt64(sectors) % perBlock == 0 else { throw BlockRequestError(errno: EINVAL) }
        }
        let perBlock = geometry.sectorsPerBlock
        try self.init(operation, fua: fua, lba: startSector / perBlock, blocks: UInt32(UInt64(sectors) / perBlock), geometry: geometry)
    }

    /// Decodes the descriptor at `descriptor`.
    @inline(__always)
    init(_ descriptor: UnsafePointer<cublk_io_desc>, geometry: BlockGeometry) throws(BlockRequestError) {
        let d = descriptor.pointee
        try self.init(ublkOpFlags: d.op_flags, startSector: d.start_sector, sectors: d.nr_sectors, geometry: geometry)
    }

    /// The result to commit when the request succeeded: the bytes moved (reads and writes), or 0.
    @inline(__always)
    public var successResult: Int32 { Int32(bytes) }
}
