import PCI
import Synchronization
import VFIOKit

/// A driver for the simulated IMS multi-queue device, on VFIOKit's public API only: it sets up
/// N queues, each with its own IMS slot, submits work and counts completions per queue.
///
/// Each queue's interrupt is one slot of an ``IMSDomain`` over the store chosen in
/// ``configuration`` (the device's DSA-layout table, or the queues' own contexts); every slot
/// shares MSI-X vector 0 as the doorbell. The handler consumes the queue's completions up to
/// its producer index, so a delivery that stands for several completions counts them all.
public final class IMSQueueDriver: PCIDriver, @unchecked Sendable {
    public static let name = "ims-queue"
    public static let matches = [PCIMatch(vendor: 0x1b36, device: 0x1ad0)]

    public enum StoreKind: String, Sendable, CaseIterable {
        /// The DSA-layout table in BAR0.
        case deviceTable = "table"
        /// Messages and masks in each queue's context in host memory.
        case queueContext = "context"
    }

    public struct Configuration: Sendable {
        public var queues = 16
        public var store = StoreKind.queueContext
        /// Descriptors per queue ring.
        public var ringEntries = 64
        /// How long an IMS update waits for the device's acknowledgement.
        public var commitTimeout = Duration.seconds(1)
        public init() {}
    }

    /// Read by ``start()``; set it before.
    public var configuration = Configuration()
    public let device: PCIDevice
    private let loop: EventLoop
    let registers: MMIO<IMSQueueRegisters>
    private let doorbells: Region
    /// The running queues: their memory (contexts, then rings, then completions), domain and slots.
    final class Running: @unchecked Sendable {
        /// Held until the queues stop (freed) or are handed over (taken).
        var memory: DMABuffer?
        /// The memory's first byte (the first context) and its IOVA.
        let contexts: UnsafeMutableRawPointer
        let deviceAddress: UInt64
        let domain: IMSDomain
        let slots: [IMSSlot]
        let configuration: Configuration

        init(memory: consuming DMABuffer, domain: IMSDomain, slots: [IMSSlot], configuration: Configuration) {
            contexts = memory.bytes.baseAddress!
            deviceAddress = memory.deviceAddress
            self.memory = .some(memory)
            self.domain = domain
            self.slots = slots
            self.configuration = configuration
        }
    }
    let running = Mutex<Running?>(nil)
    struct Counts {
        var completions: [UInt64]
        var deliveries: [UInt64]
        /// Descriptors handed to the device, per queue (the ring's tail is its low 32 bits).
        var submitted: [UInt64]
        /// Waits for a queue's completion that gave up.
        var timeouts: [UInt64]
    }
    let counts = Mutex(Counts(completions: [], deliveries: [], submitted: [], timeouts: []))

    /// Probes: the device must be the IMS queue device and declare IMS in its Scalable IOV DVSEC.
    public init(device: PCIDevice, loop: EventLoop) throws {
        guard try Self.supports(device) else { throw IMSQueueError.notIMSQueueDevice(device.address) }
        guard try Self.declaresIMS(device) else { throw IMSQueueError.noIMS(device.address) }
        self.device = device
        self.loop = loop
        registers = try device.bar(0).mmio(IMSQueueRegisters.self)
        doorbells = try device.bar(IMSQueueRegisters.doorbellBAR)
    }

    /// How many queues the device supports.
    public var queueCapacity: Int { Int(registers.read(IMSQueueRegisters.queueCapacity)) }

    /// The IMS domain of the running driver, for masking and inspection.
    public var domain: IMSDomain? { running.withLock { $0?.domain } }

    /// The slot of each queue while running.
    public var slots: [IMSSlot] { running.withLock { $0?.slots ?? [] } }

    /// Brings the queues up; on failure everything set up so far is undone. Framework failures
    /// arrive as `VFIOError` or `IMSError` unchanged.
    public func start() throws {
        do { try bringUp() } catch {
            registers.write(IMSQueueRegisters.control, 0)
            try? device.setBusMaster(false)
            try? device.interrupts.disable(.msix)
            throw error
        }
    }

    private func bringUp() throws {
        let c = configuration
        guard c.queues >= 1, c.queues <= queueCapacity else {
            throw IMSQueueError.tooManyQueues(requested: c.queues, supported: queueCapacity)
        }
        guard let doorbell = try device.interrupts.enable(.msix, vectors: 1).first else {
            throw IMSQueueError.noDoorbell(device.address)
        }
        let ringBytes = c.ringEntries * IMSQueueRegisters.descriptorSize
        let completionBytes = c.ringEntries * IMSQueueRegisters.completionSize
        let memory = try device.dma.allocate(Self.memoryBytes(c))
        let base = memory.bytes.baseAddress!
        let ringsAt = c.queues * IMSQueueRegisters.Context.size
        let completionsAt = ringsAt + c.queues * ringBytes
        for q in 0..<c.queues {
            let context = base + q * IMSQueueRegisters.Context.size
            context.storeBytes(of: memory.deviceAddress + UInt64(ringsAt + q * ringBytes), toByteOffset: IMSQueueRegisters.Context.ringAddress, as: UInt64.self)
            context.storeBytes(of: UInt32(c.ringEntries), toByteOffset: IMSQueueRegisters.Context.ringEntries, as: UInt32.self)
            context.storeBytes(of: UInt32(q), toByteOffset: IMSQueueRegisters.Context.tableEntry, as: UInt32.self)
            context.storeBytes(of: memory.deviceAddress + UInt64(completionsAt + q * completionBytes), toByteOffset: IMSQueueRegisters.Context.completionAddress, as: UInt64.self)
        }
        registers.write(IMSQueueRegisters.queueCount, UInt32(c.queues))
        registers.write(IMSQueueRegisters.contexts, memory.deviceAddress)
        registers.write(IMSQueueRegisters.doorbellVector, 0)
        counts.withLock {
            let zeros = [UInt64](repeating: 0, count: c.queues)
            $0 = Counts(completions: zeros, deliveries: zeros, submitted: zeros, timeouts: zeros)
        }
        // The device reads its contexts by DMA, from the first reload on.
        try device.setBusMaster(true)
        let control = IMSQueueRegisters.Control.enable | (c.store == .queueContext ? IMSQueueRegisters.Control.contextStore : 0)
        registers.write(IMSQueueRegisters.control, control)
        try arm(memory, configuration: c, doorbell: doorbell)
    }

    /// The bytes of queue memory `c` needs: every context, then every ring, then every
    /// completion area.
    static func memoryBytes(_ c: Configuration) -> Int {
        c.queues * (IMSQueueRegisters.Context.size + c.ringEntries * (IMSQueueRegisters.descriptorSize + IMSQueueRegisters.completionSize))
    }

    /// Gives each of the running queues its interrupt: a store over their contexts (or the
    /// device's table), a domain on `doorbell`, and a slot per queue, unmasked. The queues then
    /// run from `memory`.
    func arm(_ memory: consuming DMABuffer, configuration c: Configuration, doorbell: InterruptSource) throws {
        let base = memory.bytes.baseAddress!
        let store: any InterruptMessageStore
        switch c.store {
        case .deviceTable: store = try DSAInterruptTable(bar: try device.bar(0))
        case .queueContext:
            store = try QueueContextStore(
                contexts: base, queues: c.queues, layout: IMSQueueRegisters.Context.storeLayout,
                doorbell: IMSQueueRegisters.reloadDoorbell(registers))
        }
        guard store.capacity >= c.queues else { throw IMSQueueError.tooManyQueues(requested: c.queues, supported: store.capacity) }
        let domain = try IMSDomain(
            store: store, device: device, delivery: .doorbell(doorbell, loop), posting: IMSQueueRegisters.summaryPosting(registers),
            commitTimeout: c.commitTimeout)
        let contextsAddress = UInt(bitPattern: base)
        let handler = IMSHandler { [unowned(unsafe) self] slot in self.completed(queue: slot.index, contexts: contextsAddress) }
        let slots = try domain.batch { (b) throws(IMSError) -> [IMSSlot] in
            var slots: [IMSSlot] = []
            slots.reserveCapacity(c.queues)
            for q in 0..<c.queues {
                let slot = try b.allocate(handler: handler)
                // A fresh domain hands out indices in order: queue q's interrupt is slot q.
                guard slot.index == q else { throw .store(IMSQueueError.slotOutOfOrder(slot: slot.index, queue: q)) }
                try b.unmask(slot)
                slots.append(slot)
            }
            return slots
        }
        let queues = Running(memory: memory, domain: domain, slots: slots, configuration: c)
        running.withLock { $0 = queues }
    }

    /// Quiesces: every slot is shut off, the device is disabled, its memory unmapped.
    public func stop() {
        guard let r = running.withLock({ r in defer { r = nil }; return r }) else { return }
        r.domain.close()
        registers.write(IMSQueueRegisters.control, 0)
        try? device.setBusMaster(false)
        try? device.interrupts.disable(.msix)
    }

    /// Queues `count` descriptors on `queue` and rings its doorbell.
    public func submit(queue: Int, count: Int = 1) throws(IMSQueueError) {
        guard let r = running.withLock({ $0 }) else { throw .notStarted }
        guard queue >= 0, queue < r.configuration.queues else { throw .noSuchQueue(queue, queues: r.configuration.queues) }
        let entries = r.configuration.ringEntries
        let tail: UInt32? = counts.withLock { c in
            let outstanding = Int(c.submitted[queue] &- c.completions[queue])
            guard outstanding + count <= entries else { return nil }
            let ring = r.contexts.load(fromByteOffset: queue * IMSQueueRegisters.Context.size + IMSQueueRegisters.Context.ringAddress, as: UInt64.self)
            let ringBase = r.contexts + Int(ring - r.deviceAddress)
            let first = UInt32(truncatingIfNeeded: c.submitted[queue])
            for i in 0..<count {
                let id = first &+ UInt32(i)
                ringBase.storeBytes(of: UInt64(queue) << 32 | UInt64(id), toByteOffset: Int(id % UInt32(entries)) * IMSQueueRegisters.descriptorSize, as: UInt64.self)
            }
            c.submitted[queue] &+= UInt64(count)
            return UInt32(truncatingIfNeeded: c.submitted[queue])
        }
        guard let tail else { throw .queueFull(queue, entries: entries) }
        MemoryBarrier.write()
        do { try doorbells.write(tail, at: queue * 4) } catch { throw .device(error) }
    }

    /// Completions the driver has consumed on `queue`.
    public func completions(queue: Int) -> UInt64 { counts.withLock { $0.completions.indices.contains(queue) ? $0.completions[queue] : 0 } }

    /// Completions per group of `groupSize` consecutive queues (one figure per queue for 1).
    public func completionCounts(groupSize: Int = 1) -> [UInt64] {
        let all = counts.withLock { $0.completions }
        let size = max(groupSize, 1)
        return stride(from: 0, to: all.count, by: size).map { all[$0..<min($0 + size, all.count)].reduce(0, +) }
    }

    /// Interrupt deliveries per queue: at most one per completion, fewer when completions
    /// arrived together.
    public func deliveries(queue: Int) -> UInt64 { counts.withLock { $0.deliveries.indices.contains(queue) ? $0.deliveries[queue] : 0 } }

    public var totalCompletions: UInt64 { counts.withLock { $0.completions.reduce(0, +) } }

    /// Each queue's submissions, completions and timeouts, read together.
    public var queueActivity: [DriverActivity.Queue] {
        counts.withLock { c in
            c.submitted.indices.map { DriverActivity.Queue(name: "queue \($0)", submitted: c.submitted[$0], completed: c.completions[$0], timeouts: c.timeouts[$0]) }
        }
    }

    /// Counts a timed-out wait for each of `queues`.
    func timedOut(_ queues: [Int]) {
        counts.withLock { c in for q in queues where c.timeouts.indices.contains(q) { c.timeouts[q] += 1 } }
    }

    /// Runs on the event loop for `queue`'s slot: consumes completions up to the producer index.
    /// `delivered` is false for the catch-up after an adoption, which no interrupt caused.
    func completed(queue: Int, contexts: UInt, delivered: Bool = true) {
        let context = UnsafeMutableRawPointer(bitPattern: contexts)! + queue * IMSQueueRegisters.Context.size
        let layout = IMSQueueRegisters.Context.storeLayout
        let producer = UInt32.volatileLoad(context + layout.producer)
        MemoryBarrier.read()
        counts.withLock { c in
            let consumed = UInt32(truncatingIfNeeded: c.completions[queue])
            c.completions[queue] += UInt64(producer &- consumed)
            if delivered { c.deliveries[queue] += 1 }
        }
        UInt32.volatileStore(context + layout.consumer, producer)
    }

    private static func declaresIMS(_ device: PCIDevice) throws(VFIOError) -> Bool {
        guard let config = try? ConfigSpace(bytes: device.readConfigSpace()) else { return false }
        let capabilities = Capabilities(walking: config)
        return capabilities.all(.designatedVendorSpecific).contains { cap in
            if case .scalableIOV(let siov)? = try? DecodedCapability(cap, in: config) { return siov.isIMSSupported }
            return false
        }
    }
}

/// What the IMS queue driver reports.
public enum IMSQueueError: Error, CustomStringConvertible {
    case notIMSQueueDevice(PCIAddress)
    case noIMS(PCIAddress)
    case noDoorbell(PCIAddress)
    case notStarted
    case noSuchQueue(Int, queues: Int)
    case queueFull(Int, entries: Int)
    case tooManyQueues(requested: Int, supported: Int)
    case timeout(PCIAddress, queues: Int)
    case device(VFIOError)
    /// A fresh domain gave queue `queue`'s interrupt another slot than its own index.
    case slotOutOfOrder(slot: Int, queue: Int)
    /// The domain's slots do not fit the device's 32-bit posting register.
    case tooManySlotsToPost(Int)

    public var description: String {
        switch self {
        case let .notIMSQueueDevice(a): "probing \(a): not the simulated IMS queue device (1b36:1ad0); pick the driver that matches its IDs"
        case let .noIMS(a): "probing \(a): no Scalable IOV DVSEC declares IMS; this driver needs the device's IMS"
        case let .noDoorbell(a): "\(a) offers no MSI-X vector for the IMS doorbell"
        case .notStarted: "the IMS queue driver is not started: call start() first"
        case let .noSuchQueue(q, n): "queue \(q) does not exist: the driver runs \(n) queues"
        case let .queueFull(q, n): "queue \(q) has \(n) descriptors outstanding: wait for completions"
        case let .tooManyQueues(r, s): "\(r) queues requested but the device or its IMS store supports \(s)"
        case let .timeout(a, n): "\(a) completed no work on some of its \(n) queues within 5 s: the device may be hung; reset it"
        case let .device(e): e.description
        case let .slotOutOfOrder(slot, q): "slot \(slot) allocated for queue \(q)"
        case let .tooManySlotsToPost(n): "\(n) slots do not fit the posting register"
        }
    }
}
