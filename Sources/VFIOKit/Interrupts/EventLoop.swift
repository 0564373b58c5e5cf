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
///   is preallocated and handlers are held unretained while they run (`vfiokit-bench irq`
///   counts it).
/// - Each registration is identified in epoll by its slot in the loop's ``HandlerTable`` and the
///   slot's tag, so an event for an ended registration is dropped even when a new one took the
///   slot or the fd number.
/// - Once ``Registration/end()`` returns on another thread, its handler is not running and never
///   runs again; ended from inside that handler, it takes effect when the handler returns.
/// - ``stop()`` from another thread returns once the loop thread has finished its last handler
///   and let go of the loop. From inside a handler it returns at once, and no handler runs after
///   the one that called it returns. A started loop keeps itself alive until it stops.
/// - If `epoll_wait` fails (other than `EINTR`, which the ``SystemCalls`` seam retries), the loop
///   stops rather than retry, and ``failure`` says why.
///
/// Rules for handlers, which keep loops free of deadlock: a handler must never wait for
/// something that itself waits for that handler to return.
/// - It must not call ``Interrupts/enable(_:vectors:)``, ``Interrupts/grow(_:to:)``,
///   ``Interrupts/disable(_:)`` or `PCIDevice.close()`: they end registrations and wait for
///   running handlers, and another thread inside one of them may be waiting for this handler.
/// - It may end any registration of its own loop (its own takes effect when it returns), call
///   ``stop()``, and use ``Interrupts/mask(_:)``, ``Interrupts/unmask(_:)``,
///   ``Interrupts/trigger(_:vector:)``, ``Interrupts/sources(_:)`` and ``Interrupts/info(_:)``,
///   none of which waits.
/// - Ending a registration on another loop, or stopping another loop, waits for that loop's
///   running handler: do it only if that loop's handlers never wait for this one.
public final class EventLoop: Sendable {
    final class Handler: Sendable {
        let run: @Sendable (UInt64) -> Void
        let source: InterruptSource
        init(_ run: @escaping @Sendable (UInt64) -> Void, source: InterruptSource) {
            self.run = run
            self.source = source
        }
    }

    /// The loop thread's life; kept apart from the loop so the thread can report its exit after
    /// letting go of the loop.
    struct Lifecycle: Sendable {
        var started: UInt64 = 0
        var exited: UInt64 = 0
        var failure: VFIOError?
    }

    /// How many registrations a loop holds unless told otherwise.
    public static let defaultCapacity = 4096
    /// How many registrations the loop holds at once (at most 2^32; slots are 32 bits of epoll_data).
    public let capacity: Int
    let system: any SystemCalls
    /// The epoll set and the wake eventfd, until ``close()``. A loop dropped without it (every
    /// registration holds the loop, so none is left then) closes them as ``OwnedFileDescriptor``'s
    /// last resort: an epoll set and an eventfd have nothing to flush.
    private let files: Mutex<Files?>
    /// Their descriptors, for the loop thread and registrations; valid until ``close()``.
    let epoll: FileDescriptor
    private let wake: FileDescriptor
    /// The registrations' handlers, a slot each; an epoll token is a slot and its tag.
    let handlers: HandlerTable<Handler>
    let lifecycle = Monitor(Lifecycle())
    private let stopping = Atomic<Bool>(false)
    private let loopThreadID = Atomic<UInt>(0)
    private static let wakeToken = UInt64.max

    private struct Files: ~Copyable {
        var epoll: OwnedFileDescriptor, wake: OwnedFileDescriptor

        consuming func close() throws(VFIOError) {
            // Both are closed even when the first failed; the first failure is reported.
            var failure: VFIOError?
            do { try wake.close() } catch { failure = error }
            do { try epoll.close() } catch { failure = failure ?? error }
            if let failure { throw failure }
        }
    }

    /// Creates the epoll set; call ``start()`` to begin dispatching.
    public init(system: any SystemCalls = HostSystemCalls.shared, capacity: Int = defaultCapacity) throws(VFIOError) {
        self.system = system
        self.capacity = min(max(capacity, 0), Int(UInt32.max))
        // On a failure below, the files made so far close as they go out of scope.
        let epoll = OwnedFileDescriptor(
            try attempt(SystemCall("epoll_create1")) { () throws(Errno) in try system.epollCreate() },
            name: "the event loop's epoll set", system: system)
        let wake = OwnedFileDescriptor(
            try attempt(SystemCall("eventfd", detail: "for the event loop's wake-ups")) { () throws(Errno) in
                try system.eventfd(initialValue: 0, flags: Int32(EFD_NONBLOCK))
            }, name: "the event loop's wake eventfd", system: system)
        try attempt(SystemCall("epoll_ctl", detail: "ADD the event loop's wake eventfd")) { () throws(Errno) in
            try system.epollControl(epoll.rawValue, EPOLL_CTL_ADD, wake.rawValue, events: EPOLLIN.rawValue, data: Self.wakeToken)
        }
        (self.epoll, self.wake) = (epoll.rawValue, wake.rawValue)
        files = Mutex(Files(epoll: epoll, wake: wake))
        handlers = HandlerTable(capacity: self.capacity)
    }

    /// Stops the loop (``stop()``) and closes its epoll set and wake eventfd, reporting the
    /// first failure (both are closed all the same). Registrations still live are ended
    /// first. Calling it again does nothing; not from inside a handler.
    public func close() throws(VFIOError) {
        precondition(!onLoopThread, "EventLoop.close() inside a handler")
        stop()
        // Their later end() finds the slots released and leaves epoll alone.
        let live = handlers.slots.withLock { t in t.liveIndices.map { Self.token(slot: $0, tag: t[$0].tag) } }
        for token in live { end(token) }
        try files.withLock { $0.take() }?.close()
    }

    /// Why the loop stopped by itself (``VFIOError/eventLoopFailed(errno:)``); nil while it is healthy.
    public var failure: VFIOError? { lifecycle.withLock { $0.failure } }

    /// True on the loop's own thread, that is, inside a handler.
    var onLoopThread: Bool { loopThreadID.load(ordering: .acquiring) == Self.currentThreadID }

    /// Starts the loop thread. Calling it again while running does nothing; a loop that is
    /// stopping is waited for and started anew. A loop that failed throws its ``failure``.
    public func start() throws(VFIOError) {
        guard !onLoopThread else { return }
        try lifecycle.withLock(after: { s in s.started == s.exited || !stopping.load(ordering: .acquiring) }) {
            (s) throws(VFIOError) in
            if let failure = s.failure { throw failure }
            guard s.started == s.exited else { return }
            stopping.store(false, ordering: .releasing)
            try spawnThread()
            s.started += 1
        }
    }

    /// Starts a detached thread that runs the loop, holding it until the loop ends, and then
    /// reports its exit.
    private func spawnThread() throws(VFIOError) {
        try startDetachedThread(for: "for the event loop", { self.run() }) { [lifecycle] in
            lifecycle.update { $0.exited += 1 }
        }
    }

    /// Stops the loop. From another thread, returns once the loop thread has finished its last
    /// handler and let go of the loop. From inside a handler, returns at once; no handler runs
    /// after the current one returns. Stopping a loop that is not running does nothing.
    public func stop() {
        let thread: UInt64? = lifecycle.withLock { s in
            guard s.started != s.exited else { return nil }
            stopping.store(true, ordering: .releasing)
            return s.started
        }
        guard let thread else { return }
        signalWake()
        guard !onLoopThread else { return }
        lifecycle.wait { $0.exited >= thread }
    }

    /// Cannot fail: the eventfd is the loop's, open while it lives, and nonblocking; a counter
    /// already at its maximum (EAGAIN) wakes the loop all the same.
    private func signalWake() {
        var one: UInt64 = 1
        _ = try? withUnsafeBytes(of: &one) { (b) throws(Errno) in try system.write(wake, from: b) }
    }

    private func run() {
        loopThreadID.store(Self.currentThreadID, ordering: .releasing)
        defer { loopThreadID.store(0, ordering: .releasing) }
        let batch = EpollBatch()
        defer { batch.deallocate() }
        let (events, data, counter) = (batch.events, batch.data, batch.counter)
        while !stopping.load(ordering: .acquiring) {
            let n: Int
            do {
                n = try system.epollWait(epoll, events: events, data: data, capacity: EpollBatch.capacity, timeoutMilliseconds: -1)
            } catch {
                lifecycle.withLock { $0.failure = .eventLoopFailed(errno: error) }
                return
            }
            for i in 0..<n {
                // A handler may have stopped the loop: nothing runs after it.
                if stopping.load(ordering: .acquiring) { return }
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
        let (slot, tag) = Self.split(token)
        guard slot < capacity else { return }
        _ = handlers.run(slot, claim: { t in t.holds(slot, tag: tag) ? t[slot].handler : nil }) { h in
            let source = h.source
            counter.storeBytes(of: 0, as: UInt64.self)
            let read = (try? system.read(source.fd, into: UnsafeMutableRawBufferPointer(rebasing: counter[..<source.width]))) ?? 0
            if read == source.width {
                h.run(Swift.max(source.count(read: UnsafeRawBufferPointer(counter)), 1))
            }
        }
    }

    static func token(slot: Int, tag: UInt32) -> UInt64 { UInt64(tag) << 32 | UInt64(slot) }

    static func split(_ token: UInt64) -> (slot: Int, tag: UInt32) { (Int(token & 0xffff_ffff), UInt32(token >> 32)) }

    private static var currentThreadID: UInt { UInt(bitPattern: Int(bitPattern: UInt(pthread_self()))) }
}
