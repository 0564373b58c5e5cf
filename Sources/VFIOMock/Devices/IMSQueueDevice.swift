import Dispatch
import Synchronization
import VFIOKit

/// A simulated multi-queue device with an Interrupt Message Store, of either kind: a DSA-layout
/// table in BAR0 or messages in the queues' contexts in host memory. PCIe, with Intel's Scalable
/// IOV DVSEC (IMS supported) and a few MSI-X vectors, one of which is the IMS doorbell.
///
/// BAR0 holds the registers, in DSA's places where DSA has them: GENCAP at 0x10
/// (`max_ims_mult` in bits 30:25), TABLE_OFFSET at 0x60 (`ims` in bits 63:48, in units of
/// 0x100) and the IMS table at 0x1000. BAR2 holds one 32-bit doorbell per queue at
/// 4 × queue: writing it publishes the queue's new submission tail. BAR4 holds the MSI-X table.
/// All three are mappable register BARs, as vfio-pci maps a device's MMIO, and the model sees
/// every access made through them (``Options/mappableRegisters``).
///
/// Each queue has a 64-byte context in host memory (see ``Context``), an array of 16-byte
/// descriptors and an array of 8-byte completions. For each descriptor the device writes its
/// first 8 bytes as a completion, then the producer index, then sends the queue's interrupt
/// message: a 32-bit write of the message data to the message address, through the IOMMU, then
/// the doorbell vector. A masked message is held (in table mode as the entry's pending bit) and
/// sent once when the slot is unmasked. The driver sees a queue as pending while its producer
/// differs from its consumer.
///
/// Summary posting: with ``postSummaries`` set in the control register, a message written into
/// the status area at ``Registers/postingBase`` (``Registers/postingSlots`` slots, laid out as
/// ``IMSStatusLayout`` says) is followed by a write of 1 to each summary word above its slot,
/// bottom-up, before the doorbell.
///
/// Context mode: the device caches each context's message and mask and rereads them only when
/// the driver writes a queue index (or 0xffffffff for all) to ``Registers/reload``; it counts
/// each completed reload in ``Registers/reloadAcknowledged``.
public final class IMSQueueDevice: SimulatedDevice {
    /// BAR0's register offsets, in bytes; 64-bit registers may also be accessed as two 32-bit halves.
    public enum Registers {
        /// The device's version (32-bit, read-only): 0x100.
        public static let version = 0x00
        /// DSA's GENCAP (read-only): `max_ims_mult` (``Options/imsMultiplier``) in bits 30:25.
        public static let gencap = 0x10
        /// How many queues the device supports (32-bit).
        public static let queueCapacity = 0x18
        /// How many queues the driver configured (32-bit).
        public static let queueCount = 0x20
        /// The IOVA of the context array (64-bit).
        public static let contexts = 0x28
        /// Bit 0 enables the device; bit 1 selects the queue-context store (else the table).
        public static let control = 0x30
        /// The MSI-X vector the device sends after each message write.
        public static let doorbellVector = 0x38
        /// Write a queue index, or ``reloadAll``, to make the device reread those queues' contexts
        /// (context mode). A DMA fault, an out-of-range index or ``setAcknowledgesReloads(_:)`` off
        /// leaves it unacknowledged.
        public static let reload = 0x40
        /// How many reloads the device completed (32-bit, read-only, wrapping).
        public static let reloadAcknowledged = 0x44
        /// The IOVA of the status area's first slot word, for summary posting (64-bit).
        public static let postingBase = 0x48
        /// How many slot words the status area has (32-bit).
        public static let postingSlots = 0x50
        /// DSA's TABLE_OFFSET (64-bit, read-only): the IMS table's offset, in units of 0x100, in bits 63:48.
        public static let tableOffset = 0x60
        /// The IMS table: 16-byte DSA-layout entries (address low, address high, data, control with
        /// the mask in bit 0), `256 × imsMultiplier` of them, all masked after reset.
        public static let table = 0x1000
    }

    /// Byte offsets in a queue's 64-byte context in host memory, which the driver fills.
    public enum Context {
        /// The bytes each queue's context takes; context `q` is at ``Registers/contexts`` + 64 × q.
        public static let size = 64
        /// The IOVA of the queue's array of 16-byte descriptors (64-bit).
        public static let ringAddress = 0x00
        /// How many descriptors the array holds (32-bit); a queue with 0 never completes anything.
        public static let ringEntries = 0x08
        /// Table mode: the IMS table entry the queue's interrupt uses.
        public static let tableEntry = 0x0c
        /// The IOVA of the queue's array of 8-byte completions, one per descriptor slot (64-bit).
        public static let completionAddress = 0x10
        /// How many completions the device has written (32-bit, wrapping); the device writes it.
        public static let producer = 0x18
        /// How many completions the driver has consumed (32-bit); the driver writes it, the device
        /// never reads it.
        public static let consumer = 0x1c
        /// Context mode: the queue's interrupt message address (64-bit).
        public static let messageAddress = 0x20
        /// Context mode: the queue's interrupt message data (32-bit).
        public static let messageData = 0x28
        /// Context mode: bit 0 masks the queue's message; the device sees it only on a reload.
        public static let messageControl = 0x2c
    }

    /// The PCI vendor ID the model reports: 0x1b36, QEMU's (Red Hat's) vendor ID.
    public static let vendorID: UInt16 = 0x1b36
    /// The PCI device ID the model reports.
    public static let deviceID: UInt16 = 0x1ad0
    /// ``Registers/control`` bit 0: the device processes doorbells.
    public static let enable: UInt32 = 1
    /// ``Registers/control`` bit 1: interrupt messages come from the queue contexts, not the table.
    public static let contextStore: UInt32 = 2
    /// ``Registers/control`` bit 2: post summary words after each message (see ``IMSStatusLayout``).
    public static let postSummaries: UInt32 = 4
    /// Written to ``Registers/reload``: reload every configured queue's context.
    public static let reloadAll: UInt32 = 0xffff_ffff

    /// The device's shape and behaviour, fixed when it is made except where a setter says otherwise.
    public struct Options: Sendable {
        /// Queues the device supports (the BAR2 doorbell array is sized for them).
        public var maxQueues = 1 << 20
        /// `GENCAP.max_ims_mult`: the table holds 256 × this many entries.
        public var imsMultiplier = 8
        /// The MSI-X table's size; the doorbell vector is one of these.
        public var msixVectors = 4
        /// How long after a doorbell the device completes the work.
        public var completionDelay: Duration = .zero
        /// When false, reload requests are ignored and never acknowledged.
        public var acknowledgesReloads = true
        /// Whether the BARs are mappable, as vfio-pci maps them (the model still sees every
        /// access); false keeps them pread/pwrite only, for tests that fail those calls.
        public var mappableRegisters = true

        /// The defaults: 2^20 queues, 2048 IMS entries, 4 MSI-X vectors, immediate completions,
        /// reloads acknowledged, BARs mappable.
        public init() {}
    }

    private struct QueueState {
        var head: UInt32 = 0
        var producer: UInt32 = 0
        var address: UInt64 = 0
        var data: UInt32 = 0
        var masked = true
        /// A message came while masked: it is sent at unmask.
        var held = false
    }

    private struct State {
        var options: Options
        var control: UInt32 = 0
        var queueCount = 0
        var contexts: UInt64 = 0
        var doorbellVector: UInt32 = 0
        var postingBase: UInt64 = 0
        var postingSlots: UInt32 = 0
        /// The status area's layout, as the two posting registers give it.
        var posting: IMSStatusLayout?
        var reloads: UInt32 = 0
        var queues: [QueueState] = []
        /// DSA-layout table: 4 words per entry, and the pending bits of masked entries.
        var table: [UInt32]
        var tablePending: [Bool]
        var messagesSent = 0
        var generation = 0
        /// Injected faults: queues whose doorbells are ignored, and queues that lose the
        /// completion of their next descriptor.
        var stalled: Set<Int> = []
        var dropNextCompletion: Set<Int> = []

        /// Recomputes the posting layout from its registers (none while either is zero).
        mutating func updatePosting() {
            posting =
                postingBase != 0 && postingSlots != 0 ? IMSStatusLayout(base: postingBase, slots: Int(min(postingSlots, 1 << 24))) : nil
        }
    }

    private let state: Mutex<State>
    private let busBox = Mutex<DeviceBus?>(nil)
    private let worker = DispatchQueue(label: "ims-queue-device")
    private let initialOptions: Options

    /// A device in its power-on state: every IMS entry masked, no queues, not enabled.
    public init(options: Options = Options()) {
        initialOptions = options
        let entries = options.imsMultiplier * 256
        state = Mutex(
            State(options: options, table: Array(repeating: 0, count: entries * 4), tablePending: Array(repeating: false, count: entries)))
        state.withLock { s in for e in 0..<entries { s.table[e * 4 + 3] = 1 } }
    }

    /// A PCIe function of class 0x088000 with BAR0 (1 MiB of registers), a 64-bit BAR2 of
    /// doorbells sized for ``Options/maxQueues`` (at least 4 KiB), and the MSI-X table in BAR4.
    public var description: DeviceDescription {
        let doorbells = max(4096, 1 << (Int.bitWidth - (initialOptions.maxQueues * 4 - 1).leadingZeroBitCount))
        let backing: BARDescription.Backing = initialOptions.mappableRegisters ? .registers : .trapped
        var d = DeviceDescription(
            vendorID: Self.vendorID, deviceID: Self.deviceID, classCode: 0x088000, revision: 1,
            bars: [
                BARDescription(index: 0, size: 1 << 20, backing: backing),
                BARDescription(index: 2, size: doorbells, backing: backing, is64Bit: true),
                BARDescription(index: 4, size: 16 * 1024, backing: backing),
            ],
            interruptPin: 1,
            msix: MSIXDescription(tableSize: initialOptions.msixVectors, tableBAR: 4, tableOffset: 0, pbaBAR: 4, pbaOffset: 0x2000),
            isPCIExpress: true)
        d.hasIMS = true
        return d
    }

    /// Keeps `bus` for DMA, messages and the doorbell vector.
    public func attach(to bus: DeviceBus) { busBox.withLock { $0 = bus } }
    private var bus: DeviceBus? { busBox.withLock { $0 } }

    // MARK: Fault injection and inspection

    /// Stops (or resumes) acknowledging context reloads: commits then time out.
    public func setAcknowledgesReloads(_ on: Bool) { state.withLock { $0.options.acknowledgesReloads = on } }

    /// Delays every completion by `delay` after its doorbell.
    public func setCompletionDelay(_ delay: Duration) { state.withLock { $0.options.completionDelay = delay } }

    /// Stops processing `queue`'s descriptors: its doorbells are ignored from now on.
    public func stall(queue: Int) { state.withLock { _ = $0.stalled.insert(queue) } }

    /// Consumes `queue`'s next descriptor without writing its completion, as a device that
    /// lost it would; later descriptors complete as before.
    public func dropNextCompletion(queue: Int) { state.withLock { _ = $0.dropNextCompletion.insert(queue) } }

    /// Sends `queue`'s interrupt `count` times without new work, as a faulty device might.
    /// Each one honours the mask, as hardware does.
    public func storm(queue: Int, count: Int) {
        for _ in 0..<count { state.withLock { s in _ = interrupt(queue, &s) } }
    }

    /// Interrupt messages the device has written so far.
    public var messagesSent: Int { state.withLock { $0.messagesSent } }

    /// Whether the device holds `slot` masked: in context mode queue `slot`'s mask as last
    /// reloaded, else table entry `slot`'s ctrl bit 0.
    public func isMasked(slot: Int) -> Bool {
        state.withLock { s in s.control & Self.contextStore != 0 ? s.queues[slot].masked : s.table[slot * 4 + 3] & 1 != 0 }
    }

    // MARK: Registers

    /// Serves BAR0's registers and IMS table in 32- and 64-bit accesses; other widths, other BARs
    /// and BAR2's doorbells read as all ones, unknown registers as 0.
    public func readRegister(bar: Int, offset: Int, width: Int) -> UInt64 {
        let ones: UInt64 = width == 8 ? ~0 : (1 << UInt64(width * 8)) - 1
        guard bar == 0, width == 4 || width == 8 else { return ones }
        let value: UInt64 = state.withLock { s in
            let tableEnd = Registers.table + s.table.count * 4
            if offset >= Registers.table, offset + width <= tableEnd {
                let word = (offset - Registers.table) / 4
                let low = UInt64(s.table[word])
                return width == 8 ? low | UInt64(s.table[word + 1]) << 32 : low
            }
            switch offset {
            case Registers.version: return 0x100
            case Registers.gencap: return UInt64(s.options.imsMultiplier & 0x3f) << 25
            case Registers.queueCapacity: return UInt64(s.options.maxQueues)
            case Registers.queueCount: return UInt64(s.queueCount)
            case Registers.contexts: return width == 8 ? s.contexts : s.contexts & 0xffff_ffff
            case Registers.contexts + 4: return s.contexts >> 32
            case Registers.control: return UInt64(s.control)
            case Registers.doorbellVector: return UInt64(s.doorbellVector)
            case Registers.postingBase: return width == 8 ? s.postingBase : s.postingBase & 0xffff_ffff
            case Registers.postingBase + 4: return s.postingBase >> 32
            case Registers.postingSlots: return UInt64(s.postingSlots)
            case Registers.reloadAcknowledged: return UInt64(s.reloads)
            case Registers.tableOffset: return UInt64(Registers.table / 0x100) << 48
            case Registers.tableOffset + 4: return UInt64(Registers.table / 0x100) << 16
            default: return 0
            }
        }
        return value & ones
    }

    /// BAR2: a 32-bit write at 4 × q publishes queue q's new tail (completed now, or after
    /// ``Options/completionDelay``). BAR0: 32- and 64-bit writes to the registers and the IMS
    /// table; unmasking an entry with a held message sends it. Anything else is ignored.
    public func writeRegister(bar: Int, offset: Int, width: Int, value: UInt64) {
        if bar == 2, width == 4 { return doorbell(queue: offset / 4, tail: UInt32(truncatingIfNeeded: value)) }
        guard bar == 0, width == 4 || width == 8 else { return }
        let v32 = UInt32(truncatingIfNeeded: value)
        state.withLock { s in
            let tableEnd = Registers.table + s.table.count * 4
            if offset >= Registers.table, offset + width <= tableEnd {
                writeTable(word: (offset - Registers.table) / 4, v32, &s)
                if width == 8 { writeTable(word: (offset - Registers.table) / 4 + 1, UInt32(value >> 32), &s) }
                return
            }
            switch offset {
            case Registers.queueCount:
                let count = Int(min(v32, UInt32(s.options.maxQueues)))
                s.queueCount = count
                s.queues = Array(repeating: QueueState(), count: count)
            case Registers.contexts: s.contexts = width == 8 ? value : s.contexts & ~0xffff_ffff | UInt64(v32)
            case Registers.contexts + 4: s.contexts = s.contexts & 0xffff_ffff | UInt64(v32) << 32
            case Registers.control: s.control = v32 & 7
            case Registers.doorbellVector: s.doorbellVector = v32
            case Registers.postingBase:
                s.postingBase = width == 8 ? value : s.postingBase & ~0xffff_ffff | UInt64(v32)
                s.updatePosting()
            case Registers.postingBase + 4:
                s.postingBase = s.postingBase & 0xffff_ffff | UInt64(v32) << 32
                s.updatePosting()
            case Registers.postingSlots:
                s.postingSlots = v32
                s.updatePosting()
            case Registers.reload: reload(v32, &s)
            default: break
            }
        }
    }

    /// Back to the power-on state with the options it was made with (the setters' changes are
    /// undone); completions delayed from before the reset are dropped.
    public func reset() {
        state.withLock { s in
            let entries = s.options.imsMultiplier * 256
            s = State(
                options: initialOptions, table: Array(repeating: 0, count: entries * 4),
                tablePending: Array(repeating: false, count: entries), generation: s.generation + 1)
            for e in 0..<entries { s.table[e * 4 + 3] = 1 }
        }
    }

    // MARK: Behaviour

    /// A write to the table; unmasking an entry with a held message sends it.
    private func writeTable(word: Int, _ value: UInt32, _ s: inout State) {
        guard word < s.table.count else { return }
        s.table[word] = value
        let entry = word / 4
        if word % 4 == 3, value & 1 == 0, s.tablePending[entry] {
            s.tablePending[entry] = false
            sendTableMessage(entry, &s)
        }
    }

    /// Rereads contexts, 4096 at a time as a device's context cache would: a DMA the IOMMU
    /// refuses stops the reload unacknowledged.
    private func reload(_ which: UInt32, _ s: inout State) {
        guard s.options.acknowledgesReloads, let bus else { return }
        let queues = which == Self.reloadAll ? 0..<s.queueCount : Int(which)..<Int(which) + 1
        guard queues.upperBound <= s.queueCount else { return }
        var bytes = [UInt8](repeating: 0, count: min(queues.count, 4096) * Context.size)
        for first in stride(from: queues.lowerBound, to: queues.upperBound, by: 4096) {
            let chunk = first..<min(first + 4096, queues.upperBound)
            let base = s.contexts + UInt64(first * Context.size)
            let read = bytes.withUnsafeMutableBytes {
                bus.dmaRead(iova: base, into: UnsafeMutableRawBufferPointer(rebasing: $0[..<(chunk.count * Context.size)]))
            }
            guard read else { return }
            bytes.withUnsafeBytes { raw in
                for (i, q) in chunk.enumerated() {
                    let at = i * Context.size
                    s.queues[q].address = raw.loadUnaligned(fromByteOffset: at + Context.messageAddress, as: UInt64.self)
                    s.queues[q].data = raw.loadUnaligned(fromByteOffset: at + Context.messageData, as: UInt32.self)
                    s.queues[q].masked = raw.loadUnaligned(fromByteOffset: at + Context.messageControl, as: UInt32.self) & 1 != 0
                    if !s.queues[q].masked && s.queues[q].held {
                        s.queues[q].held = false
                        sendContextMessage(q, &s)
                    }
                }
            }
        }
        s.reloads &+= 1
    }

    private func doorbell(queue: Int, tail: UInt32) {
        let delay = state.withLock { $0.options.completionDelay }
        guard delay > .zero else { return complete(queue: queue, tail: tail) }
        let generation = state.withLock { $0.generation }
        let nanoseconds = Int(delay / .nanoseconds(1))
        worker.asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) { [self] in
            guard state.withLock({ $0.generation }) == generation else { return }
            complete(queue: queue, tail: tail)
        }
    }

    /// Completes `queue`'s descriptors up to `tail`, then interrupts once.
    private func complete(queue: Int, tail: UInt32) {
        guard let bus else { return }
        state.withLock { s in
            guard s.control & Self.enable != 0, queue < s.queueCount, !s.stalled.contains(queue) else { return }
            var context = [UInt8](repeating: 0, count: Context.size)
            let at = s.contexts + UInt64(queue * Context.size)
            guard context.withUnsafeMutableBytes({ bus.dmaRead(iova: at, into: $0) }) else { return }
            let (ring, entries, completions) = context.withUnsafeBytes { raw in
                (
                    raw.load(fromByteOffset: Context.ringAddress, as: UInt64.self),
                    raw.load(fromByteOffset: Context.ringEntries, as: UInt32.self),
                    raw.load(fromByteOffset: Context.completionAddress, as: UInt64.self)
                )
            }
            guard entries > 0 else { return }
            var completed = false
            while s.queues[queue].head != tail {
                var id: UInt64 = 0
                let slot = UInt64(s.queues[queue].head % entries)
                guard withUnsafeMutableBytes(of: &id, { bus.dmaRead(iova: ring + slot * 16, into: $0) }) else { break }
                if s.dropNextCompletion.remove(queue) != nil {
                    s.queues[queue].head &+= 1
                    continue
                }
                let done = UInt64(s.queues[queue].producer % entries)
                guard withUnsafeBytes(of: &id, { bus.dmaWrite(iova: completions + done * 8, from: $0) }) else { break }
                s.queues[queue].head &+= 1
                s.queues[queue].producer &+= 1
                var producer = s.queues[queue].producer
                _ = withUnsafeBytes(of: &producer) { bus.dmaWrite(iova: at + UInt64(Context.producer), from: $0) }
                completed = true
            }
            if completed { _ = interrupt(queue, &s) }
        }
    }

    /// Sends `queue`'s interrupt, or holds it if masked. Returns true if a message went out.
    private func interrupt(_ queue: Int, _ s: inout State) -> Bool {
        guard queue < s.queueCount else { return false }
        if s.control & Self.contextStore != 0 {
            guard !s.queues[queue].masked else {
                s.queues[queue].held = true
                return false
            }
            sendContextMessage(queue, &s)
            return true
        }
        guard let bus else { return false }
        var entry: UInt32 = 0
        let at = s.contexts + UInt64(queue * Context.size + Context.tableEntry)
        guard withUnsafeMutableBytes(of: &entry, { bus.dmaRead(iova: at, into: $0) }), Int(entry) < s.tablePending.count else {
            return false
        }
        if s.table[Int(entry) * 4 + 3] & 1 != 0 {
            s.tablePending[Int(entry)] = true
            return false
        }
        sendTableMessage(Int(entry), &s)
        return true
    }

    private func sendTableMessage(_ entry: Int, _ s: inout State) {
        let address = UInt64(s.table[entry * 4]) | UInt64(s.table[entry * 4 + 1]) << 32
        send(address: address, data: s.table[entry * 4 + 2], &s)
    }

    private func sendContextMessage(_ queue: Int, _ s: inout State) {
        send(address: s.queues[queue].address, data: s.queues[queue].data, &s)
    }

    /// The message write (with its summaries when posting), then the doorbell vector. A write
    /// the IOMMU refuses is recorded as a fault by the mock; the doorbell still goes out, as it
    /// would from hardware.
    private func send(address: UInt64, data: UInt32, _ s: inout State) {
        guard let bus else { return }
        write(address: address, data: data, s, bus)
        s.messagesSent += 1
        bus.signalMSIX(vector: Int(s.doorbellVector))
    }

    private func write(address: UInt64, data: UInt32, _ s: borrowing State, _ bus: DeviceBus) {
        bus.writeMessage(address: address, data: data)
        guard s.control & Self.postSummaries != 0 else { return }
        s.posting?.forEachSummary(ofMessageAt: address) { bus.writeMessage(address: $0, data: 1) }
    }

    /// A message write as the device makes it, summaries included, with no doorbell: for
    /// benchmarks that time the demux alone.
    public func writeMessage(address: UInt64, data: UInt32) {
        guard let bus else { return }
        state.withLock { s in write(address: address, data: data, s, bus) }
    }
}
