import Dispatch
import Synchronization
import VFIOKit

/// A driver for QEMU's edu device, on VFIOKit's public API only, so it runs unchanged on the
/// mock and on a real kernel, on every backend.
///
/// Interrupts come as MSI when the device and backend offer it, else INTx (unmasked again
/// after each one is acknowledged). Every wait is bounded and ends in a timeout error.
public final class EduDriver: PCIDriver, @unchecked Sendable {
    public static let name = "edu"
    public static let matches = [PCIMatch(vendor: 0x1234, device: 0x11e8)]

    public let device: PCIDevice
    private let loop: EventLoop
    private let registers: MMIO<EduRegisters>
    /// Interrupt causes seen by the handler and not yet consumed by a waiter.
    private let pending = Atomic<UInt32>(0)
    private let arrived = DispatchSemaphore(value: 0)
    private let registration = Mutex<EventLoop.Registration?>(nil)
    private let kind = Mutex<IRQIndex?>(nil)

    /// The interrupt kind in use once started.
    public var interruptKind: IRQIndex? { kind.withLock { $0 } }

    public init(device: PCIDevice, loop: EventLoop) throws {
        guard try Self.supports(device) else { throw EduError.notEdu(device.address) }
        self.device = device
        self.loop = loop
        registers = try device.bar(0).mmio(EduRegisters.self)
        guard identification & 0xff == 0xed else { throw EduError.badIdentification(device.address, identification) }
    }

    /// The identification register (0x010000ed for edu 1.0).
    public var identification: UInt32 { registers.read(EduRegisters.identification) }

    /// True when BAR 0 answers at all: the liveness register returns `~value`.
    public func isLive(probe value: UInt32 = 0x1234_5678) -> Bool {
        registers.write(EduRegisters.liveness, value)
        return registers.read(EduRegisters.liveness) == ~value
    }

    public func start() throws {
        let msi = try device.interrupts.info(.msi)
        let kind: IRQIndex = msi.count > 0 && msi.flags.contains(.eventfd) ? .msi : .intx
        guard let source = try device.interrupts.enable(kind, vectors: 1).first else {
            throw VFIOError.interruptUnavailable(device.address, kind, requested: 1, available: 0)
        }
        self.kind.withLock { $0 = kind }
        try registration.withLock { (r) throws(VFIOError) in
            r = try loop.register(source) { [unowned self] _ in self.handleInterrupt() }
        }
        try device.setBusMaster(true)
    }

    public func stop() {
        try? device.setBusMaster(false)
        registration.withLock { $0 = nil }  // ends it
        if let kind = kind.withLock({ k in defer { k = nil }; return k }) { try? device.interrupts.disable(kind) }
    }

    /// Runs on the event loop: acknowledges every cause and hands them to the waiter.
    private func handleInterrupt() {
        let causes = registers.read(EduRegisters.interruptStatus)
        if causes != 0 { registers.write(EduRegisters.interruptAcknowledge, causes) }
        if interruptKind == .intx { try? device.interrupts.unmask(.intx) }
        pending.bitwiseOr(causes, ordering: .acquiringAndReleasing)
        arrived.signal()
    }

    /// Waits until the handler has seen all of `causes`, then consumes them.
    private func waitForInterrupt(_ causes: UInt32, what: String, timeout: Duration) throws(EduError) {
        let milliseconds = Int(timeout / .milliseconds(1))
        let deadline = DispatchTime.now() + .milliseconds(milliseconds)
        while pending.load(ordering: .acquiring) & causes != causes {
            guard arrived.wait(timeout: deadline) == .success else {
                throw .timeout(device.address, operation: what, milliseconds: milliseconds)
            }
        }
        pending.bitwiseAnd(~causes, ordering: .acquiringAndReleasing)
    }

    /// Computes n! on the device, completion signalled by interrupt.
    public func factorial(_ n: UInt32, timeout: Duration = .seconds(5)) throws(EduError) -> UInt32 {
        registers.write(EduRegisters.status, EduRegisters.Status.interruptOnFactorial)
        registers.write(EduRegisters.factorial, n)
        try waitForInterrupt(EduRegisters.Interrupt.factorial, what: "factorial of \(n)", timeout: timeout)
        guard registers.read(EduRegisters.status) & EduRegisters.Status.computing == 0 else {
            throw .misbehaved(device.address, "the factorial interrupt arrived while the device still computes")
        }
        return registers.read(EduRegisters.factorial)
    }

    /// Raises an interrupt with `value` as its cause and waits for the handler to see it.
    public func raiseInterrupt(_ value: UInt32, timeout: Duration = .seconds(5)) throws(EduError) {
        registers.write(EduRegisters.interruptRaise, value)
        try waitForInterrupt(value, what: "raised interrupt 0x\(String(value, radix: 16))", timeout: timeout)
    }

    /// The causes still pending on the device (0 once every interrupt was acknowledged).
    public var interruptStatus: UInt32 { registers.read(EduRegisters.interruptStatus) }

    /// Copies `count` bytes between RAM at `deviceAddress` and the device buffer at `offset`,
    /// and waits for the completion interrupt.
    public func dma(
        toRAM: Bool, deviceAddress: UInt64, bufferOffset: Int = 0, count: Int, timeout: Duration = .seconds(5)
    ) throws(EduError) {
        guard count > 0, bufferOffset >= 0, bufferOffset + count < EduRegisters.bufferSize else {
            throw .transferTooLarge(device.address, count: count, offset: bufferOffset)
        }
        let internalAddress = EduRegisters.bufferAddress + UInt64(bufferOffset)
        MemoryBarrier.write()
        registers.write(EduRegisters.dmaSource, toRAM ? internalAddress : deviceAddress)
        registers.write(EduRegisters.dmaDestination, toRAM ? deviceAddress : internalAddress)
        registers.write(EduRegisters.dmaCount, UInt64(count))
        var command = EduRegisters.DMACommand.start | EduRegisters.DMACommand.interrupt
        if toRAM { command |= EduRegisters.DMACommand.toRAM }
        registers.write(EduRegisters.dmaCommand, command)
        try waitForInterrupt(EduRegisters.Interrupt.dma, what: "DMA of \(count) bytes", timeout: timeout)
        MemoryBarrier.read()
    }
}
