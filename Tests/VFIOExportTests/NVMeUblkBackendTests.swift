#if canImport(Glibc)
import Glibc
#endif
import CUring
import PCI
import Synchronization
import Testing
import VFIODrivers
import VFIOKit
import VFIOMock
@testable import VFIOExport

/// The NVMe side of a ublk queue on the simulated controller: what ublk_drv would hand a tag
/// becomes the right NVMe command on the queue's pair, and its completion comes back under the tag.
@Suite("ublk's NVMe backend on the simulated controller")
final class NVMeUblkBackendTests {
    let kernel = MockKernel()
    let namespace = NVMeNamespace(blockCount: 2048, blockSize: 512)
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
        driver = try Self.driver(device, loop, polled: true)
    }

    deinit {
        driver.shutDown()
        loop.stop()
        device.close()
        controller.stop()
        other.stop()
    }

    static func driver(_ device: PCIDevice, _ loop: EventLoop, polled: Bool) throws -> NVMeDriver {
        var configuration = NVMeDriver.Configuration()
        configuration.polled = polled
        configuration.queueDepth = 8
        configuration.queues = 2
        let driver = try NVMeDriver(device: device, loop: loop, configuration: configuration)
        try driver.bringUp()
        return driver
    }

    /// What the owner thread handed back through the block queue's onReady.
    final class Reaped: Sendable {
        let list = Mutex<[(tag: UInt16, result: Int32)]>([])
        var count: Int { list.withLock { $0.count } }
    }

    /// Opens queue 0 on its owner thread and starts `request` there under `tag` with `data`;
    /// then leaves it to the owner: its own poll (or CQ interrupt) must report the completion
    /// through onReady, where it is reaped. Closes the queue once it came (or after 5 s).
    func serve(
        _ backend: NVMeUblkBackend, _ request: BlockRequest, tag: UInt16, data: NVMeDataRange
    ) throws -> [(tag: UInt16, result: Int32)] {
        var request = request
        request.tag = tag
        request.data = data
        let reactor = try backend.reactor(forQueue: 0)
        let reaped = Reaped()
        var queue: (any UblkBlockQueue)?
        var failure: (any Error)?
        reactor.run {
            do throws(UblkError) { queue = try backend.openQueue(0) } catch { failure = error; return }
            let q = queue!
            q.onReady = { [unowned(unsafe) q] in q.reap { t, r in reaped.list.withLock { $0.append((t, r)) } } }
            do throws(BlockRequestError) { try q.start(request) } catch { failure = error; return }
            #expect(q.outstanding == 1)
        }
        if failure == nil {
            for _ in 0..<5000 where reaped.count == 0 { usleep(1000) }
        }
        if let queue { reactor.run { backend.closeQueue(queue, index: 0) } }
        if let failure { throw failure }
        return reaped.list.withLock { $0 }
    }

    @Test("geometry from Identify: size, block size, MDTS, volatile write cache")
    func geometry() throws {
        let backend = try NVMeUblkBackend(driver: driver)
        #expect(backend.geometry.blockSize == 512)
        #expect(backend.geometry.blocks == 2048)
        #expect(backend.geometry.maxTransfer == driver.maxTransfer)
        #expect(backend.geometry.volatileWriteCache == driver.controller!.volatileWriteCache)
        #expect(backend.queueCount == 2)
        #expect(backend.queueDepth == 7, "an 8-entry queue holds 7 commands")
        #expect(try NVMeUblkBackend(driver: driver, readOnly: true).geometry.readOnly)
    }

    @Test(
        "a tag's write (with FUA) lands at its blocks; a read of them returns it; results come back under the tag, reported by the owner thread's poll or CQ interrupt",
        arguments: [true, false])
    func writeThenRead(polled: Bool) throws {
        let driver = polled ? driver : try Self.driver(try otherDevice(), loop, polled: false)
        defer { if !polled { driver.shutDown(); driver.device.close() } }
        let backend = try NVMeUblkBackend(driver: driver)
        let g = backend.geometry
        let buffers = try backend.allocateData(2 * g.maxTransfer)
        let tag5 = NVMeDataRange(deviceAddress: buffers.deviceAddress, count: g.maxTransfer)
        let tag6 = NVMeDataRange(deviceAddress: buffers.deviceAddress + UInt64(g.maxTransfer), count: g.maxTransfer)
        for i in 0..<4096 { buffers.bytes[i] = UInt8(truncatingIfNeeded: i &* 7 &+ 3) }
        let write = try BlockRequest(ublkOpFlags: CUBLK_IO_OP_WRITE | CUBLK_IO_F_FUA, startSector: 100, sectors: 8, geometry: g)
        let written = try serve(backend, write, tag: 5, data: tag5)
        #expect(written.map(\.0) == [5] && written.map(\.1) == [0])
        let namespace = polled ? namespace : other.namespaces[0]
        #expect(namespace.read(lba: 100, count: 8) == Array(buffers.bytes[0..<4096]))
        #expect(namespace.read(lba: 99, count: 1) == [UInt8](repeating: 0, count: 512), "nothing before the range changed")
        #expect(namespace.read(lba: 108, count: 1) == [UInt8](repeating: 0, count: 512), "nothing after the range changed")

        let read = try BlockRequest(ublkOpFlags: CUBLK_IO_OP_READ, startSector: 100, sectors: 8, geometry: g)
        let back = try serve(backend, read, tag: 6, data: tag6)
        #expect(back.map(\.0) == [6] && back.map(\.1) == [0])
        #expect(Array(buffers.bytes[g.maxTransfer..<g.maxTransfer + 4096]) == Array(buffers.bytes[0..<4096]))

        let flush = try BlockRequest(ublkOpFlags: CUBLK_IO_OP_FLUSH, startSector: 0, sectors: 0, geometry: g)
        #expect(try serve(backend, flush, tag: 0, data: tag5).map(\.1) == [0])
    }

    @Test(
        "discard and write-zeroes where ONCS has them, served on the owner thread; where it has neither, none advertised and EOPNOTSUPP before the queue"
    )
    func discardAndWriteZeroes() throws {
        let backend = try NVMeUblkBackend(driver: driver)
        let g = backend.geometry
        #expect(g.maxDiscardBlocks == .max && g.maxWriteZeroesBlocks == .max)
        let p = try g.parameters()
        #expect(p.types & CUBLK_PARAM_TYPE_DISCARD != 0)
        #expect(p.discard.max_discard_sectors == .max && p.discard.max_write_zeroes_sectors == .max && p.discard.max_discard_segments == 1)
        #expect(p.discard.discard_granularity == 512)

        let buffers = try backend.allocateData(g.maxTransfer)
        let tag = NVMeDataRange(deviceAddress: buffers.deviceAddress, count: g.maxTransfer)
        for i in 0..<8192 { buffers.bytes[i] = 0xa5 }
        let write = try BlockRequest(ublkOpFlags: CUBLK_IO_OP_WRITE, startSector: 200, sectors: 16, geometry: g)
        #expect(try serve(backend, write, tag: 2, data: tag).map(\.result) == [0])
        let zeroes = try BlockRequest(ublkOpFlags: CUBLK_IO_OP_WRITE_ZEROES, startSector: 200, sectors: 4, geometry: g)
        #expect(try serve(backend, zeroes, tag: 3, data: tag).map(\.result) == [0])
        let discard = try BlockRequest(ublkOpFlags: CUBLK_IO_OP_DISCARD, startSector: 208, sectors: 8, geometry: g)
        #expect(try serve(backend, discard, tag: 4, data: tag).map(\.result) == [0])
        #expect(namespace.read(lba: 200, count: 4) == [UInt8](repeating: 0, count: 2048), "written zeroes")
        #expect(namespace.read(lba: 204, count: 4) == [UInt8](repeating: 0xa5, count: 2048), "untouched between them")
        #expect(namespace.read(lba: 208, count: 8) == [UInt8](repeating: 0, count: 4096), "deallocated (DLFEAT: reads zeroes)")

        var options = NVMeController.Options()
        options.optionalCommands = 0
        let plain = NVMeController(namespaces: [NVMeNamespace(blockCount: 64)], options: options)
        defer { plain.stop() }
        let address = try PCIAddress(parsing: "0000:01:00.2")
        try kernel.plug(plain, at: address)
        let device = try PCIDevice.open(address, backend: .iommufd, system: kernel)
        defer { device.close() }
        let plainDriver = try Self.driver(device, loop, polled: true)
        defer { plainDriver.shutDown() }
        let without = try NVMeUblkBackend(driver: plainDriver)
        #expect(without.geometry.maxDiscardBlocks == nil && without.geometry.maxWriteZeroesBlocks == nil)
        #expect(try without.geometry.parameters().types & CUBLK_PARAM_TYPE_DISCARD == 0)
        #expect(throws: BlockRequestError(errno: EOPNOTSUPP)) {
            try BlockRequest(ublkOpFlags: CUBLK_IO_OP_DISCARD, startSector: 0, sectors: 8, geometry: without.geometry)
        }
    }

    @Test("a namespace that does not exist is refused with the reason")
    func refusals() throws {
        #expect { try NVMeUblkBackend(driver: driver, namespace: 9) } throws: { "\($0)".contains("namespace 9 does not exist") }
    }

    @Test("closing a queue gives its owner back: the driver's async requests on that pair complete as before")
    func closeGivesBack() async throws {
        let backend = try NVMeUblkBackend(driver: driver)
        let g = backend.geometry
        let buffer = try backend.allocateData(g.maxTransfer)
        let write = try BlockRequest(ublkOpFlags: CUBLK_IO_OP_WRITE, startSector: 0, sectors: 1, geometry: g)
        #expect(
            try serve(backend, write, tag: 1, data: NVMeDataRange(deviceAddress: buffer.deviceAddress, count: g.maxTransfer)).map(\.result)
                == [0])
        #expect(try driver.queueOwner(0).direct == nil)
        for _ in 0..<4 {
            try await driver.read(namespace: 1, lba: 0, blocks: 1, into: NVMeDataRange(deviceAddress: buffer.deviceAddress, count: 512))
        }
    }

    /// A second controller, for a driver of its own.
    let otherAddress = "0000:01:00.1"
    let other = NVMeController(namespaces: [NVMeNamespace(blockCount: 2048, blockSize: 512)])
    func otherDevice() throws -> PCIDevice {
        let address = try PCIAddress(parsing: otherAddress)
        try kernel.plug(other, at: address)
        return try PCIDevice.open(address, backend: .iommufd, system: kernel)
    }

    @Test("ublk on the mock: no /dev/ublk-control, so starting a device names the module to load")
    func noControlDevice() throws {
        let backend = try NVMeUblkBackend(driver: driver)
        #expect { try UblkDevice.start(backend: backend, controlPath: "/nonexistent/ublk-control") } throws: {
            ($0 as? UblkError) == .controlDeviceMissing(path: "/nonexistent/ublk-control")
        }
    }
}
