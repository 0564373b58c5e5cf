import VFIOKit
import VFIOMock

/// The same driver on a simulated edu device: no hardware, no root.
public func ringDoorbellOnTheMock() throws -> Int {
    let kernel = MockKernel()
    let address = try PCIAddress(parsing: "0000:00:04.0")
    try kernel.plug(EduDevice(), at: address)
    let device = try PCIDevice.open(address, system: kernel)
    defer { device.close() }
    let loop = try EventLoop(system: kernel)
    try loop.start()
    defer { loop.stop() }
    return try ringDoorbell(device, on: loop, count: 3)
}
