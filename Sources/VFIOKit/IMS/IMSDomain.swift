#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import Synchronization
import SystemPackage

/// The framework half of IMS: a space of interrupt slots in a driver's ``InterruptMessageStore``,
/// each with its own handler, delivered through one interrupt status area and one doorbell.
///
/// The domain chooses every message: the address of the slot's word in its
/// ``InterruptStatusArea`` (DMA memory, never the interrupt window) and a tag, fresh for each
/// allocation, as the data. The device's message write lands in that word through the IOMMU;
/// the doorbell, one MSI-X or MSI vector, tells the domain to look. A million slots need one
/// file descriptor and one event-loop registration.
///
/// Guarantees:
/// - **No lost interrupts.** A message that arrives while its slot is masked stays pending and
///   is delivered once, after ``unmask(_:)``. Messages that arrive for a slot before its handler
///   runs are delivered as one call, which runs after the last of them landed.
/// - **No spurious interrupts.** Once ``mask(_:)`` returns, the device has acknowledged the
///   mask and the slot's handler is not running and will not run until it is unmasked.
/// - **Silence on teardown.** After ``free(_:)`` or ``close()`` returns, the slot delivers
///   nothing; the store has shut it off (message cleared, masked).
/// - **Clean reuse.** A reallocated slot gets a new tag; a late message with the old tag is
///   dropped.
/// - Dispatch allocates nothing and retains nothing.
public final class IMSDomain: @unchecked Sendable {
    /// How the domain learns that messages have landed.
    public enum Delivery {
        /// `doorbell` (an enabled MSI-X or MSI vector the device sends after each message write)
        /// is registered on `loop`, where handlers run.
        case doorbell(InterruptSource, EventLoop)
        /// No doorbell: the driver calls ``poll()``, and handlers run on its thread.
        case polling
    }

    /// How a device that posts summaries (see ``IMSStatusLayout``) is told where: `enable`
    /// programs it with the domain's status area, and throws if it cannot. With it, the demux
    /// reads O(pending) words; without, it reads every allocated slot's word.
    public struct SummaryPosting: Sendable {
        /// Programs the device to post summaries into the given layout; called once, from the
        /// domain's init, before any slot is allocated. Its error fails the init.
        public var enable: @Sendable (IMSStatusLayout) throws(IMSError) -> Void

        /// Posting done by `enable`.
        public init(enable: @escaping @Sendable (IMSStatusLayout) throws(IMSError) -> Void) { self.enable = enable }
    }

    // What a demux pass reads comes first, so that it spans few cache lines of the domain.
    /// The memory behind ``statusArea``, freed by ``close()``; polling holds the lock.
    private let statusMemory: Mutex<DMABuffer?>
    private let closed = Atomic<Bool>(false)
    /// Whether the device posts summaries, so the demux walks them.
    let posted: Bool
    /// The thread running the demux now (0: none), so a handler can mask its own slot.
    let dispatchThread = Atomic<UInt>(0)
    /// The slots' handlers, tags and masks, in the framework's one ``HandlerTable``.
    let handlers: HandlerTable<IMSHandler>
    let statusArea: InterruptStatusArea

    /// The store whose slots the domain hands out and programs.
    public let store: any InterruptMessageStore
    /// How long a commit waits for the device's acknowledgement.
    public let commitTimeout: Duration
    private let device: PCIDevice
    /// The doorbell's source (set once, in init) and its registration on the loop, ended by close().
    private var doorbell: InterruptSource? = nil
    /// Set in init; taken once by close(), which the `closed` flag lets through only once.
    private var registration: EventLoop.Registration? = nil
    private let eventFDs = Mutex<[Int: FileDescriptor]>([:])
    /// Serializes store updates with the mask bits they go with: a store is called from one
    /// thread at a time, and a slot's bit here always agrees with its last committed state.
    private let updates = Mutex(())

    /// Makes a domain over every slot of `store`, with its status area in `device`'s DMA space
    /// below `limit` (for devices that cannot address more), and `posting` when the device
    /// posts summaries. Refuses a store that cannot mask.
    public init(
        store: any InterruptMessageStore, device: PCIDevice, delivery: Delivery, posting: SummaryPosting? = nil,
        below limit: UInt64 = .max, commitTimeout: Duration = .seconds(1)
    ) throws(IMSError) {
        guard store.supportsMasking else { throw .storeCannotMask(store: String(describing: type(of: store))) }
        self.store = store
        self.device = device
        self.commitTimeout = commitTimeout
        let memory = try InterruptStatusArea.allocate(slots: store.capacity, dma: device.dma, below: limit)
        statusArea = InterruptStatusArea(memory, slots: store.capacity)
        if let posting {
            do throws(IMSError) { try posting.enable(statusArea.layout) } catch {
                try? memory.free()
                throw error
            }
        }
        posted = posting != nil
        statusMemory = Mutex(memory)
        handlers = HandlerTable(capacity: store.capacity)
        guard case let .doorbell(source, loop) = delivery else { return }
        do {
            registration = try loop.register(source) { [unowned(unsafe) self] _ in self.demux() }
            doorbell = source
        } catch {
            throw .framework(error)
        }
    }

    deinit { close() }

    /// How many slots the domain has.
    public var capacity: Int { statusArea.slots }

    /// How many slots are allocated now.
    public var allocatedCount: Int { handlers.slots.withLock { $0.allocatedCount } }

    /// Allocates a slot for `handler` and programs its message; the slot starts masked. If the
    /// commit fails, the slot is shut off and freed again.
    public func allocate(handler: IMSHandler) throws(IMSError) -> IMSSlot {
        try updates.withLock { (_) throws(IMSError) -> IMSSlot in
            let slot = try reserve(handler)
            write([slot])
            do throws(IMSError) { try commit(masking: [slot]) } catch {
                abandon([slot])
                throw error
            }
            return slot
        }
    }

    /// Allocates a slot whose handler is `body`.
    public func allocate(_ body: @escaping @Sendable (IMSSlot) -> Void) throws(IMSError) -> IMSSlot {
        try allocate(handler: IMSHandler(body))
    }

    /// Allocates a slot delivered as an async stream of its firings. The stream buffers every
    /// delivery; it is a convenience outside the dispatch guarantee (yielding allocates).
    public func allocateStream() throws(IMSError) -> (slot: IMSSlot, deliveries: AsyncStream<Void>) {
        let (stream, continuation) = AsyncStream<Void>.makeStream()
        let slot = try allocate { _ in continuation.yield() }
        return (slot, stream)
    }

    /// Allocates a slot delivered by signalling an eventfd of its own, for handing the slot to
    /// another thread or process. The domain owns the file and closes it when the slot is freed.
    public func allocateEventFD() throws(IMSError) -> (slot: IMSSlot, eventfd: FileDescriptor) {
        let system = device.context.system
        let owned: OwnedFileDescriptor
        do throws(Errno) {
            // On a failed allocation it closes as it goes out of scope.
            owned = OwnedFileDescriptor(
                try system.eventfd(initialValue: 0, flags: Int32(EFD_NONBLOCK)), name: "an IMS slot's eventfd", system: system)
        } catch {
            throw .framework(error.vfio(SystemCall("eventfd", detail: "for an IMS slot")))
        }
        let fd = owned.rawValue
        let slot = try allocate { _ in
            var one: UInt64 = 1
            // Cannot fail: a nonblocking eventfd's write fails only at the counter's maximum
            // (EAGAIN), when it is readable all the same.
            _ = try? withUnsafeBytes(of: &one) { (b) throws(Errno) in try system.write(fd, from: b) }
        }
        _ = owned.release()  // the domain's now, closed when the slot is freed
        eventFDs.withLock { $0[slot.index] = fd }
        return (slot, fd)
    }

    /// Lets `slot` deliver. A message that arrived while it was masked is delivered now, once.
    /// If the device does not acknowledge, the slot stays masked and the error says so.
    public func unmask(_ slot: IMSSlot) throws(IMSError) {
        try updates.withLock { (_) throws(IMSError) in
            try check(slot)
            store.unmask(slot.index)
            try commit(masking: [slot])
            handlers.slots.withLock { $0.setMasked(slot.index, false) }
        }
        if statusArea.word(slot.index) != 0 { kick(slot.index) }
    }

    /// Stops `slot` from delivering. When it returns, the device has acknowledged the mask, the
    /// slot's handler is not running (unless the caller is that handler), and nothing is
    /// delivered until ``unmask(_:)``; messages in between stay pending.
    public func mask(_ slot: IMSSlot) throws(IMSError) {
        try silence(slot) { store.mask($0) }
    }

    /// Whether a message for `slot` has landed and not been delivered (it is masked), or the
    /// device holds one it has not sent.
    public func isPending(_ slot: IMSSlot) throws(IMSError) -> Bool {
        try check(slot)
        return statusArea.word(slot.index) == slot.tag || store.pending(slot.index)
    }

    /// Frees `slot`: the store shuts it off (message cleared, masked), the handler is released
    /// once it is not running, and the index may be reused with a new tag. If the commit
    /// fails, the slot stays allocated, masked: free it again.
    public func free(_ slot: IMSSlot) throws(IMSError) {
        try silence(slot) { store.shutdown($0) }
        updates.withLock { _ in release(slot.index) }
    }

    /// Masks `slot` in the handler table, has the store shut it off with `storeUpdate`, commits,
    /// and returns once its handler is not running (unless the caller is that handler).
    private func silence(_ slot: IMSSlot, _ storeUpdate: (Int) -> Void) throws(IMSError) {
        try updates.withLock { (_) throws(IMSError) in
            try check(slot)
            handlers.slots.withLock { $0.setMasked(slot.index, true) }
            storeUpdate(slot.index)
            try commit(masking: [slot])
        }
        waitUntilNotRunning(slot.index)
    }

    /// Writes a message of the caller's choosing into `slot`, for a slot whose delivery the
    /// caller takes over (a consumer that watches its own memory); the domain's demux no longer
    /// sees it. A message for the interrupt window is refused before anything is programmed.
    public func program(_ slot: IMSSlot, message: InterruptMessage) throws(IMSError) {
        guard !message.targetsMSIWindow else { throw .addressInMSIWindow(message.address) }
        try updates.withLock { (_) throws(IMSError) in
            try check(slot)
            handlers.slots.withLock { $0.setMasked(slot.index, true) }
            store.mask(slot.index)
            store.write(message, slot: slot.index)
            try commit(masking: [slot])
        }
        waitUntilNotRunning(slot.index)
    }

    /// Runs `body` with the store's updates batched: the allocations and unmasks inside it reach
    /// the store at its end and are committed once (the kernel contract's bus lock and unlock).
    /// If `body` fails, a slot it unmasked is stale (``IMSError/staleSlot(index:)``), or the
    /// commit fails, the slots it allocated are freed again and those it unmasked stay masked.
    public func batch<R>(_ body: (Batch) throws(IMSError) -> R) throws(IMSError) -> R {
        let batch = Batch(domain: self)
        let result = try updates.withLock { (_) throws(IMSError) -> R in
            let result: R
            do throws(IMSError) {
                result = try body(batch)
                guard !closed.load(ordering: .acquiring) else { throw .closed }
                if let stale = handlers.slots.withLock({ t in batch.unmasked.first { !t.holds($0.index, tag: $0.tag) } }) {
                    throw .staleSlot(index: stale.index)
                }
            } catch {
                abandon(batch.staged)
                try? commit(masking: [])
                throw error
            }
            write(batch.staged)
            for s in batch.unmasked { store.unmask(s.index) }
            do throws(IMSError) { try commit(masking: batch.staged, batch.unmasked) } catch {
                abandon(batch.staged)
                throw error
            }
            handlers.slots.withLock { t in for s in batch.unmasked where t.holds(s.index, tag: s.tag) { t.setMasked(s.index, false) } }
            return result
        }
        for slot in batch.unmasked where statusArea.word(slot.index) != 0 { kick(slot.index) }
        return result
    }

    /// Updates collected by ``batch(_:)``, used only inside its body.
    public final class Batch: @unchecked Sendable {
        fileprivate let domain: IMSDomain
        // One thread uses a batch, so its lists need no dynamic exclusivity checks.
        @exclusivity(unchecked) fileprivate var staged: [IMSSlot] = []
        @exclusivity(unchecked) fileprivate var unmasked: [IMSSlot] = []
        fileprivate init(domain: IMSDomain) { self.domain = domain }

        /// Allocates a masked slot for `handler`; its message is written at the batch's end.
        public func allocate(handler: IMSHandler) throws(IMSError) -> IMSSlot {
            let slot = try domain.reserve(handler)
            staged.append(slot)
            return slot
        }

        /// Unmasks `slot` at the batch's end; a slot that is not live by then fails the batch.
        public func unmask(_ slot: IMSSlot) throws(IMSError) {
            guard !domain.closed.load(ordering: .acquiring) else { throw .closed }
            unmasked.append(slot)
        }
    }

    /// Shuts every slot off, stops the doorbell and frees the status area. Safe to call twice.
    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if let token = registration.take() { token.end() }
        updates.withLock { _ in
            let live = handlers.slots.withLock { $0.liveIndices }
            handlers.slots.withLock { t in for index in live { t.setMasked(index, true) } }
            for index in live { store.shutdown(index) }
            try? store.commit(timeout: commitTimeout)
            for index in live {
                waitUntilNotRunning(index)
                release(index)
            }
        }
        for h in handlers.slots.withLock({ $0.takeAllHandlers() }) { h.release() }
        statusMemory.withLock { memory in
            if let buffer = memory.take() { try? buffer.free() }
        }
    }

    // MARK: Internals

    /// Runs `body` while the status area is guaranteed to stay mapped; 0 once closed. (A handler
    /// must therefore not close its own domain.)
    func withStatusMemory(_ body: () -> Int) -> Int {
        statusMemory.withLock { _ in closed.load(ordering: .acquiring) ? 0 : body() }
    }

    func check(_ slot: IMSSlot) throws(IMSError) {
        guard !closed.load(ordering: .acquiring) else { throw .closed }
        guard handlers.slots.withLock({ $0.holds(slot.index, tag: slot.tag) }) else { throw .staleSlot(index: slot.index) }
    }

    /// Takes an index, masked, for `handler`; ``write(_:)`` then programs its message.
    fileprivate func reserve(_ handler: IMSHandler) throws(IMSError) -> IMSSlot {
        guard !closed.load(ordering: .acquiring) else { throw .closed }
        let box = Unmanaged.passRetained(handler)
        guard let slot = handlers.slots.withLock({ $0.allocate(box, masked: true) }) else {
            box.release()
            throw .domainFull(capacity: capacity)
        }
        return IMSSlot(index: slot.index, tag: slot.tag)
    }

    /// Writes the messages of newly reserved slots into the store, masked, without committing.
    private func write(_ slots: [IMSSlot]) {
        for slot in slots {
            statusArea.clear(slot.index)
            store.mask(slot.index)
            store.write(statusArea.message(index: slot.index, tag: slot.tag), slot: slot.index)
        }
    }

    /// Commits the store; if that fails the given slots are masked again (in the store and
    /// here) before the error is thrown. After a failed register access, which may be
    /// transient, the masks are committed once more so the device holds them too; after a
    /// timeout they are not, as the device is not acknowledging.
    private func commit(masking groups: [IMSSlot]...) throws(IMSError) {
        do { try store.commit(timeout: commitTimeout) } catch {
            for slots in groups {
                for s in slots { store.mask(s.index) }
                handlers.slots.withLock { t in for s in slots where t.holds(s.index, tag: s.tag) { t.setMasked(s.index, true) } }
            }
            if case .commitFailed = error { try? store.commit(timeout: commitTimeout) }
            throw error
        }
    }

    /// Takes back slots whose allocation failed: shut off in the store (committed with the
    /// next update) and released. Their handlers never ran: the slots were masked throughout.
    private func abandon(_ slots: [IMSSlot]) {
        for s in slots { store.shutdown(s.index) }
        for s in slots { release(s.index) }
    }

    private func release(_ index: Int) {
        let handler = handlers.slots.withLock { $0.release(index) }
        statusArea.clear(index)
        handler?.release()
        // Cannot fail here: an eventfd has nothing to flush, and Linux releases the descriptor
        // even when close reports an error.
        if let fd = eventFDs.withLock({ $0.removeValue(forKey: index) }) { try? device.context.system.close(fd) }
    }

    private func waitUntilNotRunning(_ index: Int) {
        guard dispatchThread.load(ordering: .acquiring) != Self.currentThread else { return }
        handlers.waitUntilNotRunning(index)
    }

    /// Rings the doorbell from software, so the loop demuxes `index`'s message, which became
    /// deliverable (its summaries are posted again: the pass that found it masked cleared them).
    private func kick(_ index: Int) {
        if posted { statusArea.post(index) }
        guard let doorbell else { return }
        var one: UInt64 = 1
        _ = try? withUnsafeBytes(of: &one) { (b) throws(Errno) in try device.context.system.write(doorbell.fd, from: b) }
    }

    static var currentThread: UInt { UInt(bitPattern: Int(bitPattern: UInt(pthread_self()))) }
}
