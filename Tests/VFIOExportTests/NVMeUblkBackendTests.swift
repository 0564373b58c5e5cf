#if canImport(Glibc)
import Glibc
#endif
import CUring
import PCI
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
        var configuration = NVMeDriver.Configuration()
        configuration.polled = true
        configuration.queueDepth = 8
        configuration.queues = 2
        driver = try NVMeDriver(device: device, loop: loop, configuration: configuration)
        try driver.bringUp()
    }

    deinit {
        driver.shutDown()
        loop.stop()
        device.close()
        controller.stop()
    }

    /// Starts `request` on queue 0 under `tag` with `data`, then reaps until it completes.
    func serve(_ backend: NVMeUblkBackend, _ request: BlockRequest, tag: UInt16, data: NVMeDataRange) throws -> [(UInt16, Int32)] {
        var reaped: [(UInt16, Int32)] = []
        var refused: BlockRequestError?
        var request = request
        request.tag = tag
        request.data = data
        try backend.withQueue(0) { queue in
            do throws(BlockRequestError) {
                try queue.start(request)
            } catch {
                refused = error
                return
            }
            #expect(queue.outstanding == 1)
            for _ in 0..<1000 where queue.outstanding > 0 {
                queue.reap { reaped.append(($0, $1)) }
            }
        }
        if let refused { throw refused }
        return reaped
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

    @Test("a tag's write (with FUA) lands at its blocks; a read of them returns it; results come back under the tag")
    func writeThenRead() throws {
        let backend = try NVMeUblkBackend(driver: driver)
        let g = backend.geometry
        let buffers = try backend.allocateData(2 * g.maxTransfer)
        let tag5 = NVMeDataRange(deviceAddress: buffers.deviceAddress, count: g.maxTransfer)
        let tag6 = NVMeDataRange(deviceAddress: buffers.deviceAddress + UInt64(g.maxTransfer), count: g.maxTransfer)
        for i in 0..<4096 { buffers.bytes[i] = UInt8(truncatingIfNeeded: i &* 7 &+ 3) }
        let write = try BlockRequest(ublkOpFlags: CUBLK_IO_OP_WRITE | CUBLK_IO_F_FUA, startSector: 100, sectors: 8, geometry: g)
        let written = try serve(backend, write, tag: 5, data: tag5)
        #expect(written.map(\.0) == [5] && written.map(\.1) == [0])
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

    @Test("an operation the geometry does not advertise is refused with EOPNOTSUPP before it reaches the queue")
    func unadvertised() throws {
        let backend = try NVMeUblkBackend(driver: driver)
        #expect(backend.geometry.maxDiscardBlocks == nil && backend.geometry.maxWriteZeroesBlocks == nil)
        #expect(throws: BlockRequestError(errno: EOPNOTSUPP)) {
            try BlockRequest(ublkOpFlags: CUBLK_IO_OP_DISCARD, startSector: 0, sectors: 8, geometry: backend.geometry)
        }
    }

    @Test("an interrupt-driven driver, or a namespace that does not exist, is refused with the reason")
    func refusals() throws {
        #expect { try NVMeUblkBackend(driver: driver, namespace: 9) } throws: { "\($0)".contains("namespace 9 does not exist") }
        let address = try PCIAddress(parsing: "0000:01:00.1")
        let other = NVMeController(namespaces: [NVMeNamespace(blockCount: 64)])
        defer { other.stop() }
        try kernel.plug(other, at: address)
        let device = try PCIDevice.open(address, backend: .iommufd, system: kernel)
        defer { device.close() }
        let interrupts = try NVMeDriver(device: device, loop: loop, configuration: NVMeDriver.Configuration())
        try interrupts.bringUp()
        defer { interrupts.shutDown() }
        #expect { try NVMeUblkBackend(driver: interrupts) } throws: { "\($0)".contains("polled queues") }
    }

    @Test("ublk on the mock: no /dev/ublk-control, so starting a device names the module to load")
    func noControlDevice() throws {
        let backend = try NVMeUblkBackend(driver: driver)
        #expect { try UblkDevice.start(backend: backend, controlPath: "/nonexistent/ublk-control") } throws: {
            ($0 as? UblkError) == .controlDeviceMissing(path: "/nonexistent/ublk-control")
        }
    }
}
