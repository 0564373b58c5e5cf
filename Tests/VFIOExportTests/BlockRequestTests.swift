#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VFIOExport

@Suite("block requests: the checks every frontend shares")
struct BlockRequestTests {
    let geometry = BlockGeometry(blockSize: 4096, blocks: 100, maxTransfer: 64 * 1024, volatileWriteCache: true, maxDiscardBlocks: 16)

    func errno(_ body: () throws -> BlockRequest) -> Int32? {
        do { _ = try body(); return nil } catch { return (error as? BlockRequestError)?.errno ?? -1 }
    }

    @Test("inside, whole and within the limits: decoded with its bytes")
    func valid() throws {
        let r = try BlockRequest(.write, fua: true, lba: 84, blocks: 16, geometry: geometry)
        #expect(r.lba == 84 && r.blocks == 16 && r.bytes == 65536 && r.fua)
        let f = try BlockRequest(.flush, lba: 1000, blocks: 7, geometry: geometry)
        #expect(f.lba == 0 && f.blocks == 0 && f.bytes == 0, "a flush ignores its range")
        #expect(try BlockRequest(.discard, lba: 0, blocks: 16, geometry: geometry).bytes == 0)
    }

    @Test("empty, past the end, wrapping or over the limit: EINVAL")
    func invalid() {
        #expect(errno { try BlockRequest(.read, lba: 0, blocks: 0, geometry: geometry) } == EINVAL)
        #expect(errno { try BlockRequest(.read, lba: 100, blocks: 1, geometry: geometry) } == EINVAL)
        #expect(errno { try BlockRequest(.read, lba: 99, blocks: 2, geometry: geometry) } == EINVAL)
        #expect(errno { try BlockRequest(.read, lba: .max, blocks: 2, geometry: geometry) } == EINVAL)
        #expect(errno { try BlockRequest(.write, lba: 0, blocks: 17, geometry: geometry) } == EINVAL)
        #expect(errno { try BlockRequest(.discard, lba: 0, blocks: 17, geometry: geometry) } == EINVAL)
    }

    @Test("read-only refuses changes with EPERM before anything else; a missing operation is EOPNOTSUPP")
    func refused() {
        var ro = geometry
        ro.readOnly = true
        #expect(errno { try BlockRequest(.write, lba: 1000, blocks: 0, geometry: ro) } == EPERM)
        #expect(errno { try BlockRequest(.discard, lba: 0, blocks: 1, geometry: ro) } == EPERM)
        #expect(errno { try BlockRequest(.read, lba: 0, blocks: 1, geometry: ro) } == nil)
        #expect(errno { try BlockRequest(.writeZeroes, lba: 0, blocks: 1, geometry: geometry) } == EOPNOTSUPP)
    }
}
