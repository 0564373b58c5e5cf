import Synchronization

/// The one handler table, shared by ``EventLoop`` (a slot per registration) and ``IMSDomain``
/// (a slot per IMS slot): preallocated slots that name a handler by index and tag, and the one
/// way of waiting for a handler that runs now.
///
/// Guarantees:
/// - ``run(_:claim:_:)`` allocates nothing and retains nothing: the slots are one 16-byte
///   record each (tag, mask, unretained handler) in memory of their own, and the handler is held
///   unretained while it runs, kept alive because ``release(_:)`` defers its release until the
///   run returns.
/// - A tag is fresh for each allocation and never 0, so an index's old owner (an event for an
///   ended registration, a late IMS message) is told apart from its new one.
/// - Once ``waitUntilNotRunning(_:)`` returns, the handler that ran in that slot when it was
///   called has returned. It sleeps on a condition, never spins; the dispatch thread itself
///   must not call it (it would wait for itself).
final class HandlerTable<Handler: AnyObject>: @unchecked Sendable {
    /// The slots, under the table's lock.
    let slots: Mutex<HandlerSlots<Handler>>
    /// Signalled when a run that someone waits for has returned.
    private let runEnded = Monitor(())

    init(capacity: Int) { slots = Mutex(HandlerSlots(capacity: capacity)) }

    /// Runs the handler `claim` picks for slot `index`, if it picks one (with the lock held; it
    /// reads the slot and may change it), then `body` with that handler, holding no lock and no
    /// reference. Returns whether a handler ran.
    @inline(__always)
    func run(
        _ index: Int, claim: (inout HandlerSlots<Handler>) -> Unmanaged<Handler>?, _ body: (Handler) -> Void
    ) -> Bool {
        let handler: Unmanaged<Handler>? = slots.withLock { t in
            guard let h = claim(&t) else { return nil }
            t.startRun(index, h)
            return h
        }
        guard let handler else { return false }
        handler._withUnsafeGuaranteedRef(body)
        let (ended, waited) = slots.withLock { t in t.finishRun() }
        ended?.release()
        if waited { runEnded.notifyAll() }
        return true
    }

    /// Sleeps until the handler running in slot `index` now, if any, has returned.
    func waitUntilNotRunning(_ index: Int) {
        guard let target = slots.withLock({ $0.ticket(ifRunning: index) }) else { return }
        runEnded.wait { _ in slots.withLock { $0.completedRuns &- target < 1 << 63 } }
        slots.withLock { $0.waiters -= 1 }
    }
}

/// The records of a ``HandlerTable``. Not thread-safe: the table holds it under its lock.
struct HandlerSlots<Handler: AnyObject>: ~Copyable, @unchecked Sendable {
    struct Slot {
        /// The live allocation's tag; 0 when free.
        var tag: UInt32 = 0
        var masked = false
        var handler: Unmanaged<Handler>? = nil
    }

    let capacity: Int
    private let slots: UnsafeMutablePointer<Slot>
    private var free: [UInt32] = []
    /// One past the highest index ever allocated: a scan of allocated slots stops below it.
    private(set) var highWater = 0
    private var nextTag: UInt32 = 0
    /// The slot whose handler runs now, if any, and that handler.
    fileprivate(set) var running: Int?
    private var runningHandler: Unmanaged<Handler>?
    /// The running handler, released while it ran: released once it returns.
    private var releaseAfterRun: Unmanaged<Handler>?
    /// Runs completed so far, so a waiter can tell when the one it waits for is over.
    fileprivate(set) var completedRuns: UInt64 = 0
    /// Threads waiting for the running handler to return.
    fileprivate var waiters = 0

    init(capacity: Int) {
        self.capacity = capacity
        slots = .allocate(capacity: max(capacity, 1))
        slots.initialize(repeating: Slot(), count: capacity)
    }

    deinit {
        slots.deinitialize(count: capacity)
        slots.deallocate()
    }

    /// Slot `index`'s record.
    @inline(__always)
    subscript(index: Int) -> Slot {
        precondition(index >= 0 && index < capacity, "handler slot \(index) is outside the table")
        return slots[index]
    }

    /// How many slots are allocated.
    var allocatedCount: Int { highWater - free.count }

    /// The allocated indices, in order.
    var liveIndices: [Int] { (0..<highWater).filter { slots[$0].tag != 0 } }

    /// Takes a free index (the most recently freed first) with a fresh tag for `handler`, which
    /// the table now holds; nil when every slot is taken.
    mutating func allocate(_ handler: Unmanaged<Handler>, masked: Bool) -> (index: Int, tag: UInt32)? {
        let index: Int
        if let reused = free.popLast() {
            index = Int(reused)
        } else if highWater < capacity {
            index = highWater
            highWater += 1
        } else {
            return nil
        }
        nextTag &+= 1
        if nextTag == 0 { nextTag = 1 }
        slots[index] = Slot(tag: nextTag, masked: masked, handler: handler)
        return (index, nextTag)
    }

    /// True when `tag` is the live allocation of `index`.
    func holds(_ index: Int, tag: UInt32) -> Bool {
        index >= 0 && index < capacity && tag != 0 && slots[index].tag == tag
    }

    mutating func setMasked(_ index: Int, _ masked: Bool) {
        precondition(index >= 0 && index < capacity, "handler slot \(index) is outside the table")
        slots[index].masked = masked
    }

    /// Frees slot `index` for reuse and returns its handler for the caller to release; if that
    /// handler runs now, it is released when the run returns instead, and nil is returned.
    mutating func release(_ index: Int) -> Unmanaged<Handler>? {
        let handler = self[index].handler
        slots[index] = Slot()
        free.append(UInt32(index))
        guard running == index, let handler, handler.toOpaque() == runningHandler?.toOpaque() else { return handler }
        releaseAfterRun = handler
        return nil
    }

    /// Every live handler, for release when the owner closes; the records forget them.
    mutating func takeAllHandlers() -> [Unmanaged<Handler>] {
        (0..<highWater).compactMap { i in
            defer { slots[i].handler = nil }
            return slots[i].handler
        }
    }

    fileprivate mutating func startRun(_ index: Int, _ handler: Unmanaged<Handler>) {
        running = index
        runningHandler = handler
    }

    /// Ends the current run: returns a handler released during it, and whether anyone waits.
    fileprivate mutating func finishRun() -> (ended: Unmanaged<Handler>?, waited: Bool) {
        running = nil
        runningHandler = nil
        completedRuns &+= 1
        defer { releaseAfterRun = nil }
        return (releaseAfterRun, waiters > 0)
    }

    /// When slot `index` runs now: counts a waiter and returns the run count that marks the end
    /// of this run.
    fileprivate mutating func ticket(ifRunning index: Int) -> UInt64? {
        guard running == index else { return nil }
        waiters += 1
        return completedRuns &+ 1
    }
}
