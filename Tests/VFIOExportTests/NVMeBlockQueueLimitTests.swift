import CUring
import Testing
import VFIOMock
@testable import VFIOExport

/// Discard and write-zeroes exported from a controller with NVM command set limits (WZSL 16
/// blocks, DMRL 1, DMRSL 24 blocks): nothing past a limit reaches the controller (the simulated
/// one would answer Invalid Field), and ublk advertises the limits.
@Suite("NVMe exports keep to the controller's discard and write-zeroes limits")
struct NVMeBlockQueueLimitTests {
    func fixture() throws -> NBDFixture {
        var options = NVMeController.Options()
        options.nvmLimits = .init(writeZeroesSize: 1, ranges: 1, rangeSize: 24)
        let f = try NBDFixture(blocks: 1024, controllerOptions: options)
        f.namespace.write(lba: 0, [UInt8](repeating: 0xc3, count: 400 * 512))
        return f
    }

    @Test("over NBD, a trim past DMRSL and a write-zeroes past WZSL run as chains of commands within them")
    func nbdChainsKeepToTheLimits() throws {
        let f = try fixture()
        let c = try RawNBDClient(path: f.socketPath)
        try c.request(NBD.Command.trim, handle: 1, offset: 10 * 512, length: 100 * 512)
        #expect(try c.reply() == .init(handle: 1, error: 0, data: []))
        try c.request(NBD.Command.writeZeroes, handle: 2, offset: 200 * 512, length: 50 * 512)
        #expect(try c.reply() == .init(handle: 2, error: 0, data: []))
        #expect(f.controller.errorCount == 0)
        #expect(f.namespace.read(lba: 10, count: 100).allSatisfy { $0 == 0 })
        #expect(f.namespace.read(lba: 200, count: 50).allSatisfy { $0 == 0 })
        for lba: UInt64 in [9, 110, 199, 250] {
            #expect(f.namespace.read(lba: lba, count: 1).allSatisfy { $0 == 0xc3 }, "block \(lba)")
        }
    }

    @Test("ublk advertises DMRSL and WZSL, so the kernel splits first")
    func ublkAdvertisesTheLimits() throws {
        let f = try fixture()
        let backend = try NVMeUblkBackend(driver: f.driver)
        #expect(backend.geometry.maxDiscardBlocks == 24 && backend.geometry.maxWriteZeroesBlocks == 16)
        let p = try backend.geometry.parameters()
        #expect(p.discard.max_discard_sectors == 24 && p.discard.max_write_zeroes_sectors == 16 && p.discard.max_discard_segments == 1)
    }
}
