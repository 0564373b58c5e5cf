#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import VFIOKit

/// An IMS store for QEMU's edu device, which has no IMS but has what real delivery needs: a DMA
/// engine that writes to an IOVA through the IOMMU, and an MSI it raises when a transfer is done.
///
/// The store keeps the slots' messages and masks here, in front of edu, and plays the device's
/// message engine: a slot's "message write" is one edu DMA of the slot's data from edu's
/// buffer to the message address, with edu's completion MSI as the doorbell. edu takes about
/// 100 ms per DMA, so ``load(_:)`` puts the data of every slot about to fire into edu's buffer
/// in one transfer first. A masked slot's event is held and sent at unmask; a commit waits for
/// the engine to go idle, so no message write is in flight when it returns.
///
/// It posts summaries (``summaryPosting``): after the message write, one more DMA per summary
/// level copies a word holding 1 from edu's buffer to the summary word, and only the last
/// raises the MSI.
public final class EduIMSStore: InterruptMessageStore, @unchecked Sendable {
    public let capacity: Int
    public var supportsMasking: Bool { true }
    /// How many slots' data edu's buffer holds (QEMU 7.2 crashes on a transfer of all 4096
    /// bytes), followed by the word of 1 that summary writes copy.
    public static let bufferSlots = EduRegisters.bufferSize / 4 - 2
    private let registers: MMIO<EduRegisters>
    private let staging: DMABuffer
    private struct Slot {
        var message = InterruptMessage(address: 0, data: 0)
        var masked = true
        var pending = false
        /// The slot's word in edu's buffer, once loaded.
        var position: Int?
    }
    private let slots: Mutex<[Slot]>
    /// The DMA engine runs one transfer at a time.
    private let engine = Mutex(())
    /// The domain's status area, once it has enabled posting.
    private let posting = Mutex<IMSStatusLayout?>(nil)

    /// A store of `capacity` slots on an edu device whose BAR0 is `registers`; `staging` is
    /// DMA memory the device can reach, of at least 4 KiB, for ``load(_:)``.
    public init(registers: MMIO<EduRegisters>, staging: consuming DMABuffer, capacity: Int) {
        self.registers = registers
        self.staging = staging
        self.capacity = capacity
        slots = Mutex(Array(repeating: Slot(), count: capacity))
    }

    public func write(_ message: InterruptMessage, slot: Int) { slots.withLock { $0[slot].message = message } }

    public func mask(_ slot: Int) { slots.withLock { $0[slot].masked = true } }

    public func unmask(_ slot: Int) {
        let held = slots.withLock { s -> Bool in
            s[slot].masked = false
            defer { s[slot].pending = false }
            return s[slot].pending
        }
        if held { try? send(slot) }
    }

    public func pending(_ slot: Int) -> Bool { slots.withLock { $0[slot].pending } }

    /// Makes every message write post its summaries into the domain's status area.
    public var summaryPosting: IMSDomain.SummaryPosting {
        IMSDomain.SummaryPosting { layout in self.posting.withLock { $0 = layout } }
    }

    /// The message `slot` holds.
    public func message(_ slot: Int) -> InterruptMessage { slots.withLock { $0[slot].message } }

    public func shutdown(_ slot: Int) { slots.withLock { $0[slot] = Slot() } }

    /// Waits until no message write is in flight.
    public func commit(timeout: Duration) throws(IMSError) {
        try engine.withLock { (_) throws(IMSError) in try waitIdle(timeout) }
    }

    /// Copies the data of `slots` into edu's buffer in one DMA and waits for it.
    public func load(_ indices: [Int]) throws(IMSError) {
        guard indices.count <= Self.bufferSlots else {
            throw .store(Failure.bufferTooSmall(holds: Self.bufferSlots, asked: indices.count))
        }
        slots.withLock { s in
            for (position, index) in indices.enumerated() {
                s[index].position = position
                staging.bytes.storeBytes(of: s[index].message.data, toByteOffset: position * 4, as: UInt32.self)
            }
        }
        staging.bytes.storeBytes(of: UInt32(1), toByteOffset: Self.bufferSlots * 4, as: UInt32.self)
        try engine.withLock { (_) throws(IMSError) in
            try waitIdle(.seconds(2))
            start(
                source: staging.deviceAddress, destination: EduRegisters.bufferAddress, count: (Self.bufferSlots + 1) * 4, toRAM: false,
                interrupt: false)
            try waitIdle(.seconds(2))
        }
    }

    /// The device's event for `slot`: its message write now, or held while the slot is masked.
    public func fire(_ slot: Int) throws(IMSError) {
        let masked = slots.withLock { s -> Bool in
            if s[slot].masked { s[slot].pending = true }
            return s[slot].masked
        }
        if !masked { try send(slot) }
    }

    /// The message write: one edu DMA from the slot's word in the buffer to the message address,
    /// then one per summary word when posting, the last raising edu's MSI.
    private func send(_ slot: Int) throws(IMSError) {
        let (message, position) = slots.withLock { ($0[slot].message, $0[slot].position) }
        guard let position else { throw .store(Failure.notLoaded(slot: slot)) }
        var writes = [(source: EduRegisters.bufferAddress + UInt64(position * 4), destination: message.address)]
        if let layout = posting.withLock({ $0 }) {
            let one = EduRegisters.bufferAddress + UInt64(Self.bufferSlots * 4)
            layout.forEachSummary(ofMessageAt: message.address) { writes.append((one, $0)) }
        }
        try engine.withLock { (_) throws(IMSError) in
            for (n, write) in writes.enumerated() {
                try waitIdle(.seconds(2))
                let last = n == writes.count - 1
                if last {
                    let acknowledged = registers.read(EduRegisters.interruptStatus)
                    if acknowledged != 0 { registers.write(EduRegisters.interruptAcknowledge, acknowledged) }
                }
                start(source: write.source, destination: write.destination, count: 4, toRAM: true, interrupt: last)
            }
        }
    }

    private func start(source: UInt64, destination: UInt64, count: Int, toRAM: Bool, interrupt: Bool) {
        MemoryBarrier.write()
        registers.write(EduRegisters.dmaSource, source)
        registers.write(EduRegisters.dmaDestination, destination)
        registers.write(EduRegisters.dmaCount, UInt64(count))
        var command = EduRegisters.DMACommand.start
        if toRAM { command |= EduRegisters.DMACommand.toRAM }
        if interrupt { command |= EduRegisters.DMACommand.interrupt }
        registers.write(EduRegisters.dmaCommand, command)
    }

    /// Waits for the DMA engine; throws if it stays busy, or if a register access since the last
    /// wait failed (the DMA it started may not have run).
    private func waitIdle(_ timeout: Duration) throws(IMSError) {
        let deadline = ContinuousClock.now + timeout
        while true {
            let command = registers.read(EduRegisters.dmaCommand)
            do throws(VFIOError) { try registers.region.checkAccesses() } catch {
                throw .commitFailed(store: "edu's DMA engine", cause: error)
            }
            if command & EduRegisters.DMACommand.start == 0 { return }
            guard ContinuousClock.now < deadline else {
                throw .commitTimeout(store: "edu's DMA engine", milliseconds: Int(timeout / .milliseconds(1)))
            }
            usleep(1000)
        }
    }

    /// What the store refuses, carried by ``IMSError/store(_:)``.
    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// More slots were to be loaded than edu's DMA buffer holds.
        case bufferTooSmall(holds: Int, asked: Int)
        /// A slot was fired before its data was loaded into the buffer.
        case notLoaded(slot: Int)

        public var description: String {
            switch self {
            case let .bufferTooSmall(holds, asked): "edu's buffer holds the data of \(holds) slots; \(asked) asked for"
            case let .notLoaded(slot): "slot \(slot)'s data is not in edu's buffer: load it first"
            }
        }
    }
}
