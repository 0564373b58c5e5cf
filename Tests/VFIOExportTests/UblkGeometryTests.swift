import CUring
import Testing
@testable import VFIOExport

@Suite("ublk parameters from the namespace's geometry")
struct UblkGeometryTests {
    @Test("size, block size, max sectors and cache attributes")
    func basic() throws {
        let g = BlockGeometry(blockSize: 4096, blocks: 1000, maxTransfer: 512 * 1024, volatileWriteCache: true)
        let p = try g.parameters()
        #expect(p.len == 60)
        #expect(p.types == CUBLK_PARAM_TYPE_BASIC)
        #expect(p.basic.logical_bs_shift == 12)
        #expect(p.basic.physical_bs_shift == 12)
        #expect(p.basic.max_sectors == 1024)
        #expect(p.basic.dev_sectors == 8000)
        #expect(p.basic.attrs == CUBLK_ATTR_VOLATILE_CACHE | CUBLK_ATTR_FUA)
    }

    @Test("no volatile write cache: no flush or FUA attributes; read-only says so")
    func attributes() throws {
        var g = BlockGeometry(blockSize: 512, blocks: 8, maxTransfer: 4096, volatileWriteCache: false)
        #expect(try g.parameters().basic.attrs == 0)
        #expect(try g.parameters().basic.logical_bs_shift == 9)
        g.readOnly = true
        g.maxDiscardBlocks = 100
        let p = try g.parameters()
        #expect(p.basic.attrs == CUBLK_ATTR_READ_ONLY)
        #expect(p.types & CUBLK_PARAM_TYPE_DISCARD == 0, "a read-only device advertises no discard")
    }

    @Test("discard and write-zeroes limits: one segment, block granularity, whole blocks, capped")
    func discard() throws {
        var g = BlockGeometry(blockSize: 4096, blocks: 1 << 40, maxTransfer: 4096, volatileWriteCache: true)
        g.maxDiscardBlocks = .max
        let p = try g.parameters()
        #expect(p.types & CUBLK_PARAM_TYPE_DISCARD != 0)
        #expect(p.discard.discard_granularity == 4096)
        #expect(p.discard.max_discard_segments == 1)
        #expect(p.discard.max_discard_sectors == UInt32.max - 7, "capped to the field, rounded down to 8-sector blocks")
        #expect(p.discard.max_write_zeroes_sectors == 0)
        g.maxDiscardBlocks = nil
        g.maxWriteZeroesBlocks = 256
        let z = try g.parameters()
        #expect(z.types & CUBLK_PARAM_TYPE_DISCARD != 0, "write zeroes rides in the discard parameters")
        #expect(z.discard.max_discard_sectors == 0)
        #expect(z.discard.max_discard_segments == 0)
        #expect(z.discard.max_write_zeroes_sectors == 2048)
        #expect(z.discard.discard_granularity == 4096, "the kernel refuses a zero granularity")
    }

    @Test("shapes ublk_drv would refuse are refused here, with the reason")
    func refusals() {
        for (bs, mt) in [(8192, 65536), (1000, 4096), (256, 4096), (512, 2048), (4096, 6144), (512, 64 << 20)] {
            let g = BlockGeometry(blockSize: bs, blocks: 10, maxTransfer: mt, volatileWriteCache: false)
            #expect(throws: UblkError.self) { try g.parameters() }
        }
        let empty = BlockGeometry(blockSize: 512, blocks: 0, maxTransfer: 4096, volatileWriteCache: false)
        #expect { try empty.parameters() } throws: { "\($0)".contains("no blocks") }
        let big = BlockGeometry(blockSize: 8192, blocks: 10, maxTransfer: 65536, volatileWriteCache: false)
        #expect { try big.parameters() } throws: { "\($0)".contains("512…4096") }
    }

    @Test("device info: queues, depth, buffer size; limits checked")
    func deviceInfo() throws {
        let g = BlockGeometry(blockSize: 512, blocks: 10, maxTransfer: 131072, volatileWriteCache: false)
        let info = try g.deviceInfo(queues: 2, depth: 64, flags: CUBLK_F_USER_COPY)
        #expect(info.nr_hw_queues == 2)
        #expect(info.queue_depth == 64)
        #expect(info.max_io_buf_bytes == 131072)
        #expect(info.dev_id == .max, "the kernel picks the number")
        #expect(info.flags == CUBLK_F_USER_COPY)
        #expect(throws: UblkError.self) { try g.deviceInfo(queues: 0, depth: 64, flags: 0) }
        #expect(throws: UblkError.self) { try g.deviceInfo(queues: 1, depth: 4097, flags: 0) }
        #expect(throws: UblkError.self) { try g.deviceInfo(queues: 1, depth: 0, flags: 0) }
    }
}
