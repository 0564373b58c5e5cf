#if canImport(Glibc)
import Glibc
#endif
import CUring
import Testing
@testable import VFIOExport

@Suite("ublk request descriptors: decoding and checks")
struct UblkRequestTests {
    /// 4 KiB blocks, 1,000 of them, 128 KiB per request, discard up to 64 blocks.
    let geometry = BlockGeometry(
        blockSize: 4096, blocks: 1000, maxTransfer: 128 * 1024, volatileWriteCache: true, maxDiscardBlocks: 64)

    func decode(
        _ op: UInt32, flags: UInt32 = 0, sector: UInt64, sectors: UInt32, in g: BlockGeometry? = nil
    ) throws(BlockRequestError) -> BlockRequest {
        try BlockRequest(ublkOpFlags: op | flags, startSector: sector, sectors: sectors, geometry: g ?? geometry)
    }

    /// The errno decoding answers with; nil when it decodes.
    func errno(_ body: () throws -> BlockRequest) -> Int32? {
        do { _ = try body(); return nil } catch { return (error as? BlockRequestError)?.errno ?? -1 }
    }

    /// The request's fields, for comparing in one expectation.
    func fields(_ r: BlockRequest) -> String {
        "\(r.operation) fua=\(r.fua) lba=\(r.lba) blocks=\(r.blocks) bytes=\(r.bytes)"
    }

    @Test("reads and writes: sectors to blocks, bytes, FUA")
    func readWrite() throws {
        let r = try decode(CUBLK_IO_OP_READ, sector: 16, sectors: 32)
        #expect(fields(r) == "read fua=false lba=2 blocks=4 bytes=16384")
        #expect(r.successResult == 16384)
        let w = try decode(CUBLK_IO_OP_WRITE, flags: CUBLK_IO_F_FUA, sector: 7992, sectors: 8)
        #expect(fields(w) == "write fua=true lba=999 blocks=1 bytes=4096")
    }

    @Test("flush ignores the range; discard has its range and no bytes")
    func others() throws {
        let f = try decode(CUBLK_IO_OP_FLUSH, sector: 12345, sectors: 3)
        #expect(f.operation == .flush && f.blocks == 0 && f.successResult == 0)
        let d = try decode(CUBLK_IO_OP_DISCARD, sector: 0, sectors: 64 * 8)
        #expect(fields(d) == "discard fua=false lba=0 blocks=64 bytes=0")
    }

    @Test("outside the namespace, misaligned, empty or oversized: EINVAL")
    func invalid() {
        #expect(errno { try decode(CUBLK_IO_OP_READ, sector: 8000, sectors: 8) } == EINVAL, "past the end")
        #expect(errno { try decode(CUBLK_IO_OP_WRITE, sector: 7992, sectors: 16) } == EINVAL, "runs past the end")
        #expect(errno { try decode(CUBLK_IO_OP_READ, sector: UInt64.max - 7, sectors: 8) } == EINVAL, "wraps")
        #expect(errno { try decode(CUBLK_IO_OP_READ, sector: 4, sectors: 8) } == EINVAL, "not on a block")
        #expect(errno { try decode(CUBLK_IO_OP_READ, sector: 8, sectors: 4) } == EINVAL, "part of a block")
        #expect(errno { try decode(CUBLK_IO_OP_READ, sector: 8, sectors: 0) } == EINVAL, "empty")
        #expect(errno { try decode(CUBLK_IO_OP_WRITE, sector: 0, sectors: 264) } == EINVAL, "over 128 KiB")
        #expect(errno { try decode(CUBLK_IO_OP_DISCARD, sector: 0, sectors: 65 * 8) } == EINVAL, "over the discard limit")
    }

    @Test("operations the device lacks: EOPNOTSUPP; changes to a read-only device: EPERM")
    func refused() {
        #expect(errno { try decode(CUBLK_IO_OP_WRITE_SAME, sector: 0, sectors: 8) } == EOPNOTSUPP)
        #expect(errno { try decode(0x22, sector: 0, sectors: 8) } == EOPNOTSUPP, "a zoned operation")
        #expect(errno { try decode(CUBLK_IO_OP_WRITE_ZEROES, sector: 0, sectors: 8) } == EOPNOTSUPP)
        var ro = geometry
        ro.readOnly = true
        #expect(errno { try decode(CUBLK_IO_OP_WRITE, sector: 0, sectors: 8, in: ro) } == EPERM)
        #expect(errno { try decode(CUBLK_IO_OP_DISCARD, sector: 0, sectors: 8, in: ro) } == EPERM)
        #expect(errno { try decode(CUBLK_IO_OP_READ, sector: 0, sectors: 8, in: ro) } == nil)
    }

    @Test("a descriptor in memory decodes the same")
    func descriptor() throws {
        var d = cublk_io_desc(op_flags: CUBLK_IO_OP_WRITE | CUBLK_IO_F_FUA, nr_sectors: 16, start_sector: 80, addr: 0)
        let r = try withUnsafePointer(to: &d) { (p) throws(BlockRequestError) in try BlockRequest(p, geometry: geometry) }
        #expect(fields(r) == "write fua=true lba=10 blocks=2 bytes=8192")
    }
}
