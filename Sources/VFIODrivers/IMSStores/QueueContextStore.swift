#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import VFIOKit

/// A queue-resident IMS store: each queue's interrupt message and mask live in its context in
/// DMA memory, beside its producer and consumer indices. The device reads the context only when
/// told to, through a context-reload doorbell, and acknowledges each reload; ``commit(timeout:)``
/// rings the doorbell for every context changed since the last commit and waits, bounded, for
/// the acknowledgements. A slot is pending when its queue's producer index differs from its
/// consumer index.
public final class QueueContextStore: InterruptMessageStore, @unchecked Sendable {
    /// Where the fields sit in one queue's context.
    public struct Layout: Sendable {
        public var stride: Int
        public var producer: Int
        public var consumer: Int
        public var messageAddress: Int
        public var messageData: Int
        /// A 32-bit word whose bit 0 masks the queue's interrupt.
        public var messageControl: Int

        public init(stride: Int, producer: Int, consumer: Int, messageAddress: Int, messageData: Int, messageControl: Int) {
            self.stride = stride
            self.producer = producer
            self.consumer = consumer
            self.messageAddress = messageAddress
            self.messageData = messageData
            self.messageControl = messageControl
        }
    }

    /// How the store reaches the device's context-reload doorbell. Each call throws when its
    /// register access failed (for registers in a trapped BAR, ``Region/checkAccesses()``).
    public struct ReloadDoorbell: Sendable {
        /// Asks the device to reread one queue's context, or every context for nil.
        public var request: @Sendable (_ queue: Int?) throws(VFIOError) -> Void
        /// The device's running count of reloads it has completed.
        public var acknowledged: @Sendable () throws(VFIOError) -> UInt32

        public init(
            request: @escaping @Sendable (_ queue: Int?) throws(VFIOError) -> Void,
            acknowledged: @escaping @Sendable () throws(VFIOError) -> UInt32
        ) {
            self.request = request
            self.acknowledged = acknowledged
        }
    }

    public static let maskBit: UInt32 = 1
    /// Past this many changed contexts a commit asks for one reload of all of them.
    static let reloadAllThreshold = 64

    public let capacity: Int
    public var supportsMasking: Bool { true }
    private let contexts: UnsafeMutableRawPointer
    private let layout: Layout
    private let doorbell: ReloadDoorbell
    private struct Dirty {
        var queues: [Int] = []
        var all = false
        /// Reloads requested so far, to compare with the device's acknowledgements.
        var requested: UInt32 = 0
    }
    private let dirty = Mutex(Dirty())
    /// Set while every context is to be reloaded, so further changes skip the lock.
    private let allDirty = Atomic<Bool>(false)

    static let name = "the queue contexts' reload doorbell"

    /// A store over `queues` contexts starting at `contexts`, which the caller keeps mapped
    /// for the store's lifetime. Throws when the doorbell's count cannot be read.
    public init(contexts: UnsafeMutableRawPointer, queues: Int, layout: Layout, doorbell: ReloadDoorbell) throws(VFIOError) {
        self.contexts = contexts
        capacity = queues
        self.layout = layout
        self.doorbell = doorbell
        let acknowledged = try doorbell.acknowledged()
        dirty.withLock { $0.requested = acknowledged }
    }

    public func write(_ message: InterruptMessage, slot: Int) {
        UInt64.volatileStore(field(slot, layout.messageAddress), message.address)
        UInt32.volatileStore(field(slot, layout.messageData), message.data)
        touch(slot)
    }

    public func mask(_ slot: Int) { setControl(slot, Self.maskBit) }

    public func unmask(_ slot: Int) { setControl(slot, 0) }

    public func pending(_ slot: Int) -> Bool {
        UInt32.volatileLoad(field(slot, layout.producer)) != UInt32.volatileLoad(field(slot, layout.consumer))
    }

    public func shutdown(_ slot: Int) {
        setControl(slot, Self.maskBit)
        UInt64.volatileStore(field(slot, layout.messageAddress), 0)
        UInt32.volatileStore(field(slot, layout.messageData), 0)
    }

    /// Rings the reload doorbell for every changed context and waits for the device to have
    /// acknowledged them all. After a timeout the contexts it covered are not reloaded again
    /// unless they change; the domain masks them, which does. After a failed register access
    /// every context is reloaded by the next commit.
    public func commit(timeout: Duration) throws(IMSError) {
        let target: UInt32?
        do { target = try requestReloads() } catch { throw failed(error) }
        guard let target else { return }
        let deadline = ContinuousClock.now + timeout
        while true {
            let acknowledged: UInt32
            do { acknowledged = try doorbell.acknowledged() } catch { throw failed(error) }
            if Int32(bitPattern: acknowledged &- target) >= 0 { return }
            guard ContinuousClock.now < deadline else {
                // Reloads the device dropped are not waited for again: later commits count
                // from what it has acknowledged by now.
                dirty.withLock { $0.requested = acknowledged }
                throw .commitTimeout(store: Self.name, milliseconds: Int(timeout / .milliseconds(1)))
            }
            sched_yield()
        }
    }

    /// Rings the doorbell for the changed contexts; returns the acknowledgement count to wait
    /// for, or nil when nothing changed.
    private func requestReloads() throws(VFIOError) -> UInt32? {
        try dirty.withLock { (d) throws(VFIOError) -> UInt32? in
            guard d.all || !d.queues.isEmpty else { return nil }
            MemoryBarrier.write()
            if d.all {
                try doorbell.request(nil)
                d.requested &+= 1
            } else {
                for q in d.queues {
                    try doorbell.request(q)
                    d.requested &+= 1
                }
            }
            d.queues.removeAll(keepingCapacity: true)
            d.all = false
            allDirty.store(false, ordering: .releasing)
            return d.requested
        }
    }

    /// After a failed access: every context is to be reloaded, and later commits count from
    /// what the device has acknowledged by now (if it can be read).
    private func failed(_ cause: VFIOError) -> IMSError {
        dirty.withLock { d in
            d.all = true
            d.queues.removeAll(keepingCapacity: true)
            allDirty.store(true, ordering: .releasing)
            if let acknowledged = try? doorbell.acknowledged() { d.requested = acknowledged }
        }
        return .commitFailed(store: Self.name, cause: cause)
    }

    private func setControl(_ slot: Int, _ value: UInt32) {
        UInt32.volatileStore(field(slot, layout.messageControl), value)
        touch(slot)
    }

    private func touch(_ slot: Int) {
        guard !allDirty.load(ordering: .acquiring) else { return }
        dirty.withLock { d in
            guard !d.all else { return }
            if d.queues.count < Self.reloadAllThreshold {
                if d.queues.last != slot { d.queues.append(slot) }
            } else {
                d.all = true
                allDirty.store(true, ordering: .releasing)
                d.queues.removeAll(keepingCapacity: true)
            }
        }
    }

    @inline(__always)
    private func field(_ slot: Int, _ offset: Int) -> UnsafeMutableRawPointer { contexts + slot * layout.stride + offset }
}
