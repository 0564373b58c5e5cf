#if canImport(Glibc)
import Glibc
#endif
import PCI
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
            let qa = NVMeBlockQueue(router: router, namespaceID: 1)
            let qb = NVMeBlockQueue(router: router, namespaceID: 1)
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
