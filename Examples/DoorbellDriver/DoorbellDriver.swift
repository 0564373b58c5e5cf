import Dispatch
import VFIOKit

/// The registers the driver uses, in BAR 0 of QEMU's edu device.
enum Doorbell: RegisterLayout {
    static let extent = 0x100
    static var interruptStatus: Register<Self, UInt32> { .init(0x24) }
    static var interruptRaise: Register<Self, UInt32> { .init(0x60) }
    static var interruptAcknowledge: Register<Self, UInt32> { .init(0x64) }
    static var dmaSource: Register<Self, UInt64> { .init(0x80) }
}

/// Rings the device's doorbell `count` times; returns how many interrupts came back.
public func ringDoorbell(_ device: PCIDevice, on loop: EventLoop, count: Int) throws -> Int {
    let registers = try device.bar(0).mmio(Doorbell.self)  // throws if BAR 0 is too small
    let buffer = try device.dma.allocate(4096)  // memory + IOVA, mapped in the IOMMU
    registers.write(Doorbell.dmaSource, buffer.deviceAddress)
    try device.setBusMaster(true)

    let vector = try device.interrupts.enable(.msi)[0]  // edu has MSI; an NVMe drive, .msix
    let arrived = DispatchSemaphore(value: 0)
    let registration = try loop.register(vector) { _ in  // runs on the loop thread
        registers.write(Doorbell.interruptAcknowledge, registers.read(Doorbell.interruptStatus))
        arrived.signal()
    }
    var received = 0
    for _ in 0..<count {
        registers.write(Doorbell.interruptRaise, 1)
        if arrived.wait(timeout: .now() + .seconds(5)) == .success { received += 1 }
    }
    registration.end()  // no more calls to the handler
    try device.interrupts.disable(.msi)
    try buffer.free()  // or let it go: it frees itself
    return received
}
