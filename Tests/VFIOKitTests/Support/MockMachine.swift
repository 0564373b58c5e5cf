import Foundation
import PCI
import SystemPackage
import VFIOKit
import VFIOMock

func pciAddress(_ text: String) -> PCIAddress { try! PCIAddress(parsing: text) }

extension Backend {
    /// Every backend a device can be opened on by name (all but `.auto`), for tests that hold on each.
    static let explicit: [Backend] = [.legacy, .iommufd, .noIOMMU, .uio]
    /// The backends that go through VFIO (all but UIO).
    static let vfio: [Backend] = [.legacy, .iommufd, .noIOMMU]
}

/// A mock kernel set up for a test, with the addresses the tests plug devices at.
struct MockMachine {
    static let primary = pciAddress("0000:01:00.0")
    static let sibling = pciAddress("0000:01:00.1")

    let kernel: MockKernel

    init(_ configure: (inout MockKernel.Configuration) -> Void = { _ in }) {
        var configuration = MockKernel.Configuration()
        configure(&configuration)
        kernel = MockKernel(configuration: configuration)
    }

    /// A configuration for `backend`: no-IOMMU mode for `.noIOMMU`, the kernel's defaults otherwise.
    init(for backend: Backend) {
        self.init { $0.noIOMMU = backend == .noIOMMU }
    }

    /// A fresh machine for `backend` with `model` plugged in at ``primary`` and opened there, as
    /// most single-device tests start. The caller closes the device.
    static func opening<Model: SimulatedDevice>(
        _ model: Model, on backend: Backend
    ) throws -> (machine: MockMachine, model: Model, device: PCIDevice) {
        let machine = MockMachine(for: backend)
        return (machine, model, try machine.open(model, on: backend))
    }

    /// Plugs `device` at `address`, bound to the driver `backend` needs, and opens it there.
    func open(_ device: SimulatedDevice, on backend: Backend, at address: PCIAddress = primary) throws -> PCIDevice {
        try kernel.plug(device, at: address, driver: backend == .uio ? .uioPCIGeneric : .vfioPCI)
        return try PCIDevice.open(address, backend: backend, system: kernel)
    }

    /// An event loop on the mock's seam, started.
    func startedLoop() throws -> EventLoop {
        let loop = try EventLoop(system: kernel)
        try loop.start()
        return loop
    }

    /// Takes the count a VFIO source's eventfd has accumulated, without blocking: nil when it
    /// has not fired.
    func takeCount(_ source: InterruptSource) throws -> UInt64? {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 8, alignment: 8)
        defer { buffer.deallocate() }
        buffer.storeBytes(of: 0, as: UInt64.self)
        let result = Result { () throws(Errno) -> Int in
            try kernel.read(source.fd, into: buffer)
        }
        switch result {
        case .failure(.resourceTemporarilyUnavailable): return nil
        case .failure(let error): throw error
        case .success(let n):
            guard n == 8 else { throw VFIOError.deviceMisbehaved("read \(n) of 8 bytes from \(source)") }
            return buffer.load(as: UInt64.self)
        }
    }
}

/// The devices tests plug in, with the options that keep tests quick.
enum Devices {
    /// edu with its DMA completing at once; `trapped`: its BAR0 is one vfio-pci cannot map.
    static func edu(trapped: Bool = false) -> EduDevice {
        var o = EduDevice.Options()
        o.dmaDelay = .zero
        o.mappableRegisters = !trapped
        return EduDevice(options: o)
    }

    /// The IMS queue device; `trapped`: its BARs are ones vfio-pci cannot map (pread/pwrite only).
    static func imsQueue(trapped: Bool) -> IMSQueueDevice {
        var o = IMSQueueDevice.Options()
        o.mappableRegisters = !trapped
        return IMSQueueDevice(options: o)
    }

    static func memory(
        msix: Int? = nil, msi: Int? = nil, trappedTable: Bool = false, pin: UInt8 = 1, reset: Bool = true,
        barSize: Int = 64 * 1024
    ) -> MemoryBARDevice {
        var o = MemoryBARDevice.Options()
        o.msixVectors = msix
        o.msiVectors = msi
        o.msixInTrappedBAR = trappedTable
        o.interruptPin = pin
        o.supportsReset = reset
        o.barSize = barSize
        return MemoryBARDevice(options: o)
    }
}

/// Collects what handlers on the event loop report and lets the test wait for it, boundedly.
///
/// One `NSCondition` guards the values and wakes the waiter: a pthread mutex and condition
/// variable, whose hand-offs ThreadSanitizer sees. (A `Synchronization.Mutex` handed over
/// under contention goes through the kernel's PI futex, which ThreadSanitizer cannot see:
/// `.ci/sanitizers/mutex-handoff.swift`.)
final class Arrivals<Value: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    /// Guarded by `condition`.
    private var values: [Value] = []

    func record(_ value: Value) {
        condition.lock()
        values.append(value)
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until `count` values have arrived in all, at most `seconds` (a guard against hangs,
    /// not a timing assertion); returns what arrived.
    @discardableResult
    func wait(for count: Int, seconds: Int = 10) -> [Value] {
        let deadline = Date(timeIntervalSinceNow: TimeInterval(seconds))
        condition.lock()
        defer { condition.unlock() }
        while values.count < count, condition.wait(until: deadline) {}
        return values
    }

    var all: [Value] {
        condition.lock()
        defer { condition.unlock() }
        return values
    }
}
