#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import Synchronization
import SystemPackage

/// One epoll loop on its own thread that runs a handler each time an interrupt source fires.
///
/// Guarantees:
/// - Handlers run on the loop's thread, one at a time, in the order epoll reports sources.
/// - A handler receives the number of times its source fired since it last ran (≥ 1).
/// - Dispatch to a registered handler allocates nothing and retains nothing: the handler table
///   is preallocated and handlers are held unretained while they run (`vfiokit bench irq`
///   counts it).
/// - After ``unregister(_:)`` returns, the handler is not running and never runs again.
/// - ``stop()`` returns after the thread has exited; no handler runs afterwards. A started
///   loop keeps itself alive until it is stopped.
public final class EventLoop: Sendable {
    /// A handler's handle, for ``unregister(_:)``.
    public struct Registration: Sendable, Hashable {
        let slot: Int
        let generation: UInt32
    }

    private final class Handler: Sendable {
        let run: @Sendable (UInt64) -> Void
        let source: InterruptSource
        init(_ run: @escaping @Sendable (UInt64) -> Void, source: InterruptSource) {
            self.run = run
            self.source = source
        }
    }

    private struct Slot {
        var generation: UInt32 = 0
        var handler: Unmanaged<Handler>?
    }

    private struct Table {
        var slots: [Slot]
        var free: [Int]
        /// The slot whose handler is running now, if any.
        var running: Int?
        /// Handlers unregistered from their own handler, released once it returns.
        var releaseAfterRun: Unmanaged<Handler>?
    }

    public static let capacity = 4096
    private let system: any SystemCalls
    private let epoll: FileDescriptor
    private let wake: FileDescriptor
    private let table: Mutex<Table>
    private let stopping = Atomic<Bool>(false)
    private let thread = Mutex<pthread_t?>(nil)
    private let loopThreadID = Atomic<UInt>(0)
    private static let wakeToken = UInt64.max

    /// Creates the epoll set; call ``start()`` to begin dispatching.
    public init(system: any SystemCalls = HostSystemCalls.shared) throws(VFIOError) {
        self.system = system
        epoll = try attempt("epoll_create1") { () throws(Errno) in try system.epollCreate() }
        do {
            wake = try system.eventfd(initialValue: 0, flags: Int32(EFD_NONBLOCK))
            try system.epollControl(epoll, EPOLL_CTL_ADD, wake, events: EPOLLIN.rawValue, data: Self.wakeToken)
        } catch {
            try? system.close(epoll)
            throw error.vfio("creating the event loop's wake eventfd")
        }
        table = Mutex(Table(slots: Array(repeating: Slot(), count: Self.capacity), free: Array((0..<Self.capacity).reversed()), running: nil))
    }

    deinit {
        stop()
        let leftovers = table.withLock { t in t.slots.compactMap(\.handler) }
        for h in leftovers { h.release() }
        try? system.close(wake)
        try? system.close(epoll)
    }

    /// Runs `handler` on the loop thread each time `source` fires.
    @discardableResult
    public func register(_ source: InterruptSource, handler: @escaping @Sendable (UInt64) -> Void) throws(VFIOError) -> Registration {
        let box = Unmanaged.passRetained(Handler(handler, source: source))
        let registration = try table.withLock { (t) throws(VFIOError) -> Registration in
            guard let slot = t.free.popLast() else {
                throw .eventLoopFull(capacity: Self.capacity)
            }
            t.slots[slot].generation &+= 1
            t.slots[slot].handler = box
            return Registration(slot: slot, generation: t.slots[slot].generation)
        }
        do {
            try system.epollControl(epoll, EPOLL_CTL_ADD, source.fd, events: EPOLLIN.rawValue, data: Self.token(registration))
        } catch {
            table.withLock { t in
                t.slots[registration.slot].handler = nil
                t.free.append(registration.slot)
            }
            box.release()
            throw error.vfio("epoll_ctl ADD \(source)")
        }
        return registration
    }

    /// An async sequence of fire counts for `source`; ending the iteration unregisters it.
    /// A convenience outside the dispatch guarantee: yielding into an `AsyncStream` and resuming
    /// the awaiting task allocate inside the Swift runtime. Use ``register(_:handler:)`` on hot paths.
    public func stream(_ source: InterruptSource) throws(VFIOError) -> AsyncStream<UInt64> {
        let (stream, continuation) = AsyncStream<UInt64>.makeStream(bufferingPolicy: .unbounded)
        let registration = try register(source) { count in continuation.yield(count) }
        continuation.onTermination = { [weak self] _ in self?.unregister(registration) }
        return stream
    }

    /// Stops dispatching to a handler. Waits for it to finish if it is running on another
    /// thread; from inside the handler itself it takes effect when the handler returns.
    public func unregister(_ registration: Registration) {
        let onLoop = loopThreadID.load(ordering: .acquiring) == Self.currentThreadID
        while true {
            let outcome: (done: Bool, release: Unmanaged<Handler>?) = table.withLock { t in
                let slot = t.slots[registration.slot]
                guard slot.generation == registration.generation, let handler = slot.handler else { return (true, nil) }
                if t.running == registration.slot && !onLoop { return (false, nil) }
                try? system.epollControl(epoll, EPOLL_CTL_DEL, handler.takeUnretainedValue().source.fd, events: 0, data: 0)
                t.slots[registration.slot].handler = nil
                t.free.append(registration.slot)
                if t.running == registration.slot {
                    t.releaseAfterRun = handler
                    return (true, nil)
                }
                return (true, handler)
            }
            if outcome.done {
                outcome.release?.release()
                return
            }
            sched_yield()
        }
    }

    /// Starts the loop thread. Calling it again while running does nothing.
    public func start() throws(VFIOError) {
        try thread.withLock { (t) throws(VFIOError) in
            guard t == nil else { return }
            stopping.store(false, ordering: .releasing)
            var id = pthread_t()
            let context = Unmanaged.passRetained(self).toOpaque()
            let rc = pthread_create(&id, nil, { raw in
                let loop = Unmanaged<EventLoop>.fromOpaque(raw!).takeRetainedValue()
                loop.run()
                return nil
            }, context)
            guard rc == 0 else {
                Unmanaged<EventLoop>.fromOpaque(context).release()
                throw .systemCall(operation: "pthread_create for the event loop", errno: Errno(rawValue: rc))
            }
            t = id
        }
    }

    /// Stops the loop and waits for its thread to exit.
    public func stop() {
        guard let id = thread.withLock({ t in defer { t = nil }; return t }) else { return }
        stopping.store(true, ordering: .releasing)
        signalWake()
        if pthread_equal(id, pthread_self()) == 0 { pthread_join(id, nil) } else { pthread_detach(id) }
    }

    private func signalWake() {
        var one: UInt64 = 1
        _ = try? withUnsafeBytes(of: &one) { (b) throws(Errno) in try system.write(wake, from: b) }
    }

    private func run() {
        loopThreadID.store(Self.currentThreadID, ordering: .releasing)
        defer { loopThreadID.store(0, ordering: .releasing) }
        let events = UnsafeMutablePointer<UInt32>.allocate(capacity: 64)
        let data = UnsafeMutablePointer<UInt64>.allocate(capacity: 64)
        let counter = UnsafeMutableRawBufferPointer.allocate(byteCount: 8, alignment: 8)
        defer {
            events.deallocate()
            data.deallocate()
            counter.deallocate()
        }
        while !stopping.load(ordering: .acquiring) {
            guard let n = try? system.epollWait(epoll, events: events, data: data, capacity: 64, timeoutMilliseconds: -1) else { continue }
            for i in 0..<n {
                if data[i] == Self.wakeToken {
                    _ = try? system.read(wake, into: counter)
                } else {
                    dispatch(token: data[i], counter: counter)
                }
            }
        }
    }

    /// Reads the source's counter and runs its handler, holding no reference and no lock.
    @inline(__always)
    private func dispatch(token: UInt64, counter: UnsafeMutableRawBufferPointer) {
        let slot = Int(token & 0xffff_ffff)
        let generation = UInt32(token >> 32)
        guard slot < Self.capacity else { return }
        let handler: Unmanaged<Handler>? = table.withLock { t in
            guard t.slots[slot].generation == generation, let h = t.slots[slot].handler else { return nil }
            t.running = slot
            return h
        }
        guard let handler else { return }
        handler._withUnsafeGuaranteedRef { h in
            let source = h.source
            counter.storeBytes(of: 0, as: UInt64.self)
            let read = (try? system.read(source.fd, into: UnsafeMutableRawBufferPointer(rebasing: counter[..<source.width]))) ?? 0
            if read == source.width {
                h.run(Swift.max(source.count(read: UnsafeRawBufferPointer(counter)), 1))
            }
        }
        let deferred = table.withLock { t in
            t.running = nil
            defer { t.releaseAfterRun = nil }
            return t.releaseAfterRun
        }
        deferred?.release()
    }

    private static func token(_ r: Registration) -> UInt64 { UInt64(r.generation) << 32 | UInt64(r.slot) }

    private static var currentThreadID: UInt { UInt(bitPattern: Int(bitPattern: UInt(pthread_self()))) }
}
