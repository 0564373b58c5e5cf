#if canImport(Glibc)
import Glibc
#endif
import VFIODrivers
import VFIOKit
import VFIOMock

/// A simulated NVMe controller on a mock machine, opened and brought up by the driver.
final class NVMeTestBench {
    let machine: MockMachine
    let controller: NVMeController
    let device: PCIDevice
    let loop: EventLoop
    let driver: NVMeDriver
    var namespace: NVMeNamespace { controller.namespaces[0] }

    /// `blocks` 512-byte blocks in namespace 1 (and any `extra` namespaces).
    init(
        blocks: UInt64 = 4096, blockSize: Int = 512, extra: [NVMeNamespace] = [], backend: Backend = .iommufd,
        controllerOptions: (inout NVMeController.Options) -> Void = { _ in },
        driverOptions: (inout NVMeDriver.Configuration) -> Void = { _ in }
    ) throws {
        machine = MockMachine(for: backend)
        var options = NVMeController.Options()
        controllerOptions(&options)
        controller = NVMeController(namespaces: [NVMeNamespace(blockCount: blocks, blockSize: blockSize)] + extra, options: options)
        device = try machine.open(controller, on: backend)
        loop = try machine.startedLoop()
        var configuration = NVMeDriver.Configuration()
        configuration.commandTimeout = .milliseconds(500)
        driverOptions(&configuration)
        driver = try NVMeDriver(device: device, loop: loop, configuration: configuration)
        try driver.bringUp()
    }

    deinit {
        driver.shutDown()
        loop.stop()
        device.close()
        controller.stop()
    }

    /// A DMA buffer of `size` bytes filled with a pattern derived from `seed`.
    func patterned(_ size: Int, seed: UInt8) throws -> DMABuffer {
        let buffer = try device.dma.allocate(size)
        for i in 0..<size { buffer.bytes[i] = UInt8(truncatingIfNeeded: i &* 31 &+ Int(seed) &+ i >> 9) }
        return buffer
    }
}

extension NVMeTestBench {
    /// Waits (polling every millisecond) until `condition` holds; fails the test after `limit`.
    func waitUntil(_ limit: Duration = .seconds(60), _ condition: () -> Bool) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        while !condition() {
            guard clock.now < deadline else {
                struct TimedOut: Error {}
                throw TimedOut()
            }
            try await Task.sleep(for: .milliseconds(1))
        }
    }
}
