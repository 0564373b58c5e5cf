import Dispatch
import Synchronization
import VFIOKit

/// A driver for QEMU's edu device, on VFIOKit's public API only, so it runs unchanged on the
/// mock and on a real kernel, on every backend.
///
/// Interrupts come as MSI when the device and backend offer it, else INTx (unmasked again
/// after each one is acknowledged). Every wait is bounded and ends in a timeout error.
public final class EduDriver: ExercisableDriver, @unchecked Sendable {
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
    private let counters = ActivityCounters(vectors: [("vector 0", nil)])
    /// Counts ``exercise()`` calls: they cycle through 1!...12! (12! fits 32 bits), and every
    /// eighth is a DMA round trip instead.
    private let exercises = Atomic<UInt32>(0)
    /// The buffer ``exercise()`` round-trips through the device, made on first use; nil also
    /// when no DMA memory could be had (no hugepages without an IOMMU).
    private let workBuffer = Mutex<DMABuffer?>(nil)
    /// Set once the device was handed over: the driver leaves it alone from then on.
    private let handedOver = Atomic<Bool>(false)

    /// Adoptable: it hands over its interrupt kind, exercise count and work buffer.
    public static let adoptable = true
    /// Payload version 1: interrupt kind (UInt8: 0 INTx, 1 MSI), exercises (UInt32), the work
    /// buffer's IOVA (UInt64, 0 for none).
    public static let stateVersion: UInt32 = 1

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

    /// Enables MSI (else INTx) and bus mastering, after acknowledging any interrupt cause a
    /// previous user left pending (one killed mid-operation), so it is not taken for a new one.
    public func start() throws {
        let stale = interruptStatus
        if stale != 0 { registers.write(EduRegisters.interruptAcknowledge, stale) }
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
        guard !handedOver.load(ordering: .acquiring) else { return }
        try? device.setBusMaster(false)
        registration.withLock { $0 = nil }  // ends it
        if let kind = kind.withLock({ k in defer { k = nil }; return k }) { try? device.interrupts.disable(kind) }
        workBuffer.withLock { slot in
            if let buffer = slot.take() { try? buffer.free() }
        }
    }

    /// Leaves the device running for a successor: its interrupt enabled (no longer handled
    /// here), bus mastering on, the work buffer handed over. Throws, leaving the driver
    /// running, when it is not started or the work buffer cannot be handed over (no IOMMU;
    /// the buffer is then freed and made again on next use).
    public func handOver(into handOver: inout DeviceHandOver) throws {
        guard let kind = interruptKind else {
            throw VFIOError.invalidArgument(operation: "handing \(device.address) over", reason: "the edu driver is not started")
        }
        let piece = try workBuffer.withLock { (slot) throws(VFIOError) -> DMAPiece? in try slot.take()?.handOver() }
        handedOver.store(true, ordering: .releasing)
        registration.withLock { $0 = nil }  // ends it: no handler of this instance runs any more
        self.kind.withLock { $0 = nil }
        var w = DriverStateRecord.Writer()
        w.append(UInt8(kind == .msi ? 1 : 0))
        w.append(exercises.load(ordering: .relaxed))
        w.append(piece?.deviceAddress ?? 0)
        handOver.record = DriverStateRecord(driver: Self.name, stateVersion: Self.stateVersion, payload: w.bytes).encoded()
        if let piece { handOver.pieces.append(piece) }
    }

    /// Takes over a device an edu driver handed over: its interrupt vector must still be
    /// enabled and bus mastering on, and its work buffer (if it had one) among `pieces`.
    public static func adopt(device: PCIDevice, loop: EventLoop, record: DriverStateRecord, pieces: [DMAPiece]) throws -> EduDriver {
        var r = DriverStateRecord.Reader(record.payload)
        let kindCode = try r.read(UInt8.self)
        let exercises = try r.read(UInt32.self)
        let bufferAddress = try r.read(UInt64.self)
        func stale(_ reason: String) -> DriverRecordError { .stale(driver: name, reason: reason) }
        guard r.remaining == 0 else { throw stale("its payload has \(r.remaining) bytes more than version \(stateVersion) writes") }
        guard kindCode <= 1 else { throw stale("interrupt kind \(kindCode) is neither INTx (0) nor MSI (1)") }
        let kind: IRQIndex = kindCode == 1 ? .msi : .intx
        let driver = try EduDriver(device: device, loop: loop)
        guard let source = device.interrupts.sources(kind).first else { throw stale("the device has no \(kind) vector enabled") }
        guard try device.readConfig(UInt16.self, at: 0x04) & 0x4 != 0 else { throw stale("its bus mastering is off") }
        var buffer: DMABuffer? = nil
        if bufferAddress != 0 {
            guard let piece = pieces.first(where: { $0.deviceAddress == bufferAddress }) else {
                throw stale("no DMA buffer was handed over at its work buffer's IOVA 0x\(String(bufferAddress, radix: 16))")
            }
            try device.dma.adopt(pieces: [piece])
            buffer = try device.dma.claim(piece)
        }
        driver.exercises.store(exercises, ordering: .relaxed)
        driver.workBuffer.withLock { $0 = buffer.take() }
        try driver.registration.withLock { (r) throws(VFIOError) in
            r = try loop.register(source) { [unowned driver] _ in driver.handleInterrupt() }
        }
        driver.kind.withLock { $0 = kind }
        return driver
    }

    /// Runs on the event loop: acknowledges every cause and hands them to the waiter.
    private func handleInterrupt() {
        counters.interrupted(0, count: 1)
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

    /// Interrupts by vector (named for the kind in use) and factorials computed.
    public var activity: DriverActivity {
        var snapshot = counters.snapshot
        if let kind = interruptKind { snapshot.interrupts[0].name = "\(kind) 0" }
        return snapshot
    }

    /// Computes the next of 1!...12!, or every eighth time copies 64 bytes RAM → device → RAM,
    /// and checks the result. Runs on one thread at a time.
    public func exercise() throws {
        let count = exercises.wrappingAdd(1, ordering: .relaxed).oldValue
        do {
            let roundTripped = try workBuffer.withLock { (slot) throws(EduError) -> Bool in
                guard count % 8 == 7 else { return false }
                let kept = slot.take()
                let buffer: DMABuffer
                if let kept {
                    buffer = kept
                } else {
                    guard let made = try? device.dma.allocate(4096, below: EduRegisters.dmaLimit) else { return false }
                    buffer = made
                }
                do throws(EduError) { try roundTrip(buffer, pattern: UInt8(truncatingIfNeeded: count)) } catch {
                    slot = consume buffer
                    throw error
                }
                slot = consume buffer
                return true
            }
            if !roundTripped {
                let n = count % 12 + 1
                let result = try factorial(n, timeout: .seconds(2))
                let expected = (1...n).reduce(1, *)
                guard result == expected else { throw EduError.misbehaved(device.address, "it computed \(n)! = \(result), expected \(expected)") }
            }
            counters.completed()
        } catch {
            counters.failed()
            throw error
        }
    }

    /// Copies 64 bytes from the first half of `buffer` through the device into the second.
    private func roundTrip(_ buffer: borrowing DMABuffer, pattern: UInt8) throws(EduError) {
        let half = buffer.bytes.count / 2
        for i in 0..<64 { buffer.bytes[i] = pattern &+ UInt8(truncatingIfNeeded: i) }
        for i in half..<half + 64 { buffer.bytes[i] = 0 }
        try dma(toRAM: false, deviceAddress: buffer.deviceAddress, count: 64, timeout: .seconds(2))
        try dma(toRAM: true, deviceAddress: buffer.deviceAddress + UInt64(half), count: 64, timeout: .seconds(2))
        guard buffer.bytes[half..<half + 64].elementsEqual(buffer.bytes[0..<64]) else {
            throw .misbehaved(device.address, "a DMA round trip of 64 bytes came back different")
        }
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
