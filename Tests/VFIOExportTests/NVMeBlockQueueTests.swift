#if canImport(Glibc)
import Glibc
#endif
import PCI
import Foundation
import Testing
import VFIODrivers
import VFIOKit
import VFIOMock
@testable import VFIOExport

/// Export queues sharing one NVMe queue pair on the simulated controller: each completion
/// comes back to the queue and tag that started it.
@Suite("NVMe block queues sharing a queue pair")
final class NVMeBlockQueueTests {
    let kernel = MockKernel()
    let namespace = NVMeNamespace(blockCount: 256, blockSize: 512)
    let controller: NVMeController
    let device: PCIDevice
    let loop: EventLoop
    let driver: NVMeDriver

    init() throws {
        controller = NVMeController(namespaces: [namespace])
        let address = try PCIAddress(parsing: "0000:01:00.0")
        try kernel.plug(controller, at: address)
        device = try PCIDevice.open(address, backend: .iommufd, system: kernel)
        loop = try EventLoop(system: kernel)
        try loop.start()
        var configuration = NVMeDriver.Configuration()
        configuration.polled = true
        configuration.queueDepth = 8
        driver = try NVMeDriver(device: device, loop: loop, configuration: configuration)
        try driver.bringUp()
    }

    deinit {
        driver.shutDown()
        loop.stop()
        device.close()
        controller.stop()
    }

    @Test("two queues, one pair: each reaps only its own tags, with each request's data where it belongs")
    func routing() throws {
        let buffer = try driver.device.dma.allocate(8192)
        for i in 0..<4096 { buffer.bytes[i] = UInt8(truncatingIfNeeded: i &* 13 &+ 1) }
        let g = BlockGeometry(blockSize: 512, blocks: 256, maxTransfer: driver.maxTransfer, volatileWriteCache: true)
        var a: [(UInt16, Int32)] = [], b: [(UInt16, Int32)] = []
        var aReady = 0, outstandingBeforeReap = 0
        try driver.withQueuePair(0) { pair in
            let router = NVMeQueueRouter(pair: pair)
            let qa = try! NVMeBlockQueue(router: router, namespace: driver.namespaces[0], tags: 8, dma: driver.device.dma, maxTransfer: driver.maxTransfer)
            let qb = try! NVMeBlockQueue(router: router, namespace: driver.namespaces[0], tags: 8, dma: driver.device.dma, maxTransfer: driver.maxTransfer)
            qa.onReady = { aReady += 1 }
            var w = try! BlockRequest(.write, fua: true, lba: 10, blocks: 8, geometry: g)
            w.tag = 3
            w.data = NVMeDataRange(deviceAddress: buffer.deviceAddress, count: 4096)
            var r = try! BlockRequest(.read, lba: 10, blocks: 8, geometry: g)
            r.tag = 3
            r.data = NVMeDataRange(deviceAddress: buffer.deviceAddress + 4096, count: 4096)
            try! qa.start(w)
            try! qb.start(r)
            outstandingBeforeReap = qa.outstanding + qb.outstanding
            for _ in 0..<1000 where qa.outstanding + qb.outstanding > 0 {
                qb.reap { b.append(($0, $1)) }
                qa.reap { a.append(($0, $1)) }
            }
            qa.leave()
            qb.leave()
        }
        #expect(outstandingBeforeReap == 2)
        #expect(a.map(\.0) == [3] && a.map(\.1) == [0])
        #expect(b.map(\.0) == [3] && b.map(\.1) == [0])
        #expect(aReady == 1, "the queue with a finished request was told once")
        #expect(namespace.read(lba: 10, count: 8) == Array(buffer.bytes[0..<4096]))
        #expect(Array(buffer.bytes[4096..<8192]) == Array(buffer.bytes[0..<4096]), "the read ran after the write, in submission order")
    }
}

/// Dataset Management and Write Zeroes through the block queue, on an image-backed namespace
/// (deallocation punches holes, so a large write-zeroes costs no memory).
@Suite("NVMe block queue: discard and write-zeroes")
final class NVMeBlockQueueDataCommandTests {
    let kernel = MockKernel()
    let directory: String
    let namespace: NVMeNamespace
    let controller: NVMeController
    let device: PCIDevice
    let loop: EventLoop
    let driver: NVMeDriver

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("nvme-bq-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        namespace = try NVMeNamespace(imageAt: directory + "/image", createSize: 140_000 * 512)
        controller = NVMeController(namespaces: [namespace])
        let address = try PCIAddress(parsing: "0000:01:00.0")
        try kernel.plug(controller, at: address)
        device = try PCIDevice.open(address, backend: .iommufd, system: kernel)
        loop = try EventLoop(system: kernel)
        try loop.start()
        var configuration = NVMeDriver.Configuration()
        configuration.polled = true
        configuration.queueDepth = 8
        driver = try NVMeDriver(device: device, loop: loop, configuration: configuration)
        try driver.bringUp()
    }

    deinit {
        driver.shutDown()
        loop.stop()
        device.close()
        controller.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs `requests` on one queue and returns each tag's result.
    func run(_ requests: [BlockRequest]) throws -> [UInt16: Int32] {
        var results: [UInt16: Int32] = [:]
        try driver.withQueuePair(0) { pair in
            let queue = try! NVMeBlockQueue(router: NVMeQueueRouter(pair: pair), namespace: driver.namespaces[0], tags: 4, dma: driver.device.dma, maxTransfer: driver.maxTransfer)
            for r in requests { try! queue.start(r) }
            for _ in 0..<100_000 where queue.outstanding > 0 { queue.reap { results[$0] = $1 } }
            queue.leave()
        }
        return results
    }

    @Test("a discard deallocates its one range; a write-zeroes of 131,073 blocks runs as three commands; the blocks around them keep their data")
    func discardAndZeroChain() throws {
        let g = BlockGeometry(blockSize: 512, blocks: 140_000, maxTransfer: driver.maxTransfer, volatileWriteCache: true,
                              maxDiscardBlocks: .max, maxWriteZeroesBlocks: .max)
        let marked: [UInt64] = [0, 1, 65_536, 65_537, 131_073, 131_074, 139_000, 139_007, 139_008]
        for lba in marked { namespace.write(lba: lba, [UInt8](repeating: 0xc3, count: 512)) }
        var zero = try BlockRequest(.writeZeroes, lba: 1, blocks: 131_073, geometry: g)
        zero.unmap = true
        zero.tag = 1
        var trim = try BlockRequest(.discard, lba: 139_000, blocks: 8, geometry: g)
        trim.tag = 2
        #expect(try run([zero, trim]) == [1: 0, 2: 0])
        let zeroed: Set<UInt64> = [1, 65_536, 65_537, 131_073, 139_000, 139_007]
        for lba in marked {
            let expected = [UInt8](repeating: zeroed.contains(lba) ? 0 : 0xc3, count: 512)
            #expect(namespace.read(lba: lba, count: 1) == expected, "block \(lba)")
        }
    }

    @Test("write-zeroes without unmap writes zeroes (no Deallocate); a link that fails ends the chain with EIO")
    func zeroWithoutUnmap() throws {
        let g = BlockGeometry(blockSize: 512, blocks: 140_000, maxTransfer: driver.maxTransfer, volatileWriteCache: true,
                              maxWriteZeroesBlocks: .max)
        namespace.write(lba: 10, [UInt8](repeating: 0x3c, count: 1024))
        var zero = try BlockRequest(.writeZeroes, fua: true, lba: 10, blocks: 1, geometry: g)
        zero.tag = 0
        // A request the geometry lets through but the namespace ends before: the controller's
        // LBA Out of Range fails the second link.
        var long = try BlockRequest(.writeZeroes, lba: 139_999 - 65_536, blocks: 65_538, geometry: BlockGeometry(
            blockSize: 512, blocks: 1 << 40, maxTransfer: driver.maxTransfer, volatileWriteCache: true, maxWriteZeroesBlocks: .max))
        long.tag = 3
        #expect(try run([zero, long]) == [0: 0, 3: -EIO])
        #expect(namespace.read(lba: 10, count: 2) == [UInt8](repeating: 0, count: 512) + [UInt8](repeating: 0x3c, count: 512))
    }
}
