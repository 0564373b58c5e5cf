#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import SystemPackage

extension EventLoop {
    /// A handler's registration on a loop, and its only owner. Ending it, with ``end()`` or by
    /// letting it go out of scope, removes the source from epoll; see ``EventLoop`` for when the
    /// handler stops running. Disabling the source's index ends it too, after which ending it
    /// does nothing: it never touches a later registration, even one on the same fd number.
    public struct Registration: ~Copyable, Sendable {
        fileprivate let loop: EventLoop
        fileprivate var token: UInt64?

        fileprivate init(loop: EventLoop, token: UInt64) {
            self.loop = loop
            self.token = token
        }

        deinit {
            if let token { loop.end(token) }
        }

        /// Ends the registration now.
        public consuming func end() {}
    }

    /// Registrations owned and ended together, for a driver with many vectors.
    public struct Registrations: ~Copyable, Sendable {
        private var members: [(loop: EventLoop, token: UInt64)] = []

        /// An empty set; ending it does nothing.
        public init() {}

        /// How many registrations it holds.
        public var count: Int { members.count }

        /// Takes over `registration`; it ends when these do.
        public mutating func append(_ registration: consuming Registration) {
            guard let token = registration.token else { return }
            registration.token = nil
            members.append((registration.loop, token))
        }

        deinit {
            for m in members { m.loop.end(m.token) }
        }

        /// Ends every registration now.
        public consuming func end() {}
    }

    /// Runs `handler` on the loop thread each time `source` fires, until the returned
    /// registration ends or the source's index is disabled.
    ///
    /// Throws ``VFIOError/interruptSourceRetired(_:_:vector:)`` for a source of a disabled index,
    /// ``VFIOError/eventLoopFull(capacity:)`` when every slot is taken, and the loop's ``failure``
    /// if it failed.
    public func register(_ source: InterruptSource, handler: @escaping @Sendable (UInt64) -> Void) throws(VFIOError) -> Registration {
        if let failure { throw failure }
        let box = Unmanaged.passRetained(Handler(handler, source: source))
        let token: UInt64
        do {
            token = try handlers.slots.withLock { (t) throws(VFIOError) -> UInt64 in
                guard let slot = t.allocate(box, masked: false) else { throw .eventLoopFull(capacity: capacity) }
                return Self.token(slot: slot.index, tag: slot.tag)
            }
        } catch {
            box.release()
            throw error
        }
        do throws(VFIOError) {
            try source.attach(to: self, token: token) { (fd) throws(VFIOError) in
                try attempt(SystemCall("epoll_ctl", detail: "ADD \(source)")) { () throws(Errno) in
                    try system.epollControl(epoll, EPOLL_CTL_ADD, fd, events: EPOLLIN.rawValue, data: token)
                }
            }
        } catch {
            // Never dispatched, so the table hands the handler back here.
            handlers.slots.withLock { t in _ = t.release(Self.split(token).slot) }
            box.release()
            throw error
        }
        return Registration(loop: self, token: token)
    }

    /// An async sequence of fire counts for `source`; ending the iteration unregisters it.
    /// A convenience outside the dispatch guarantee: yielding into an `AsyncStream` and resuming
    /// the awaiting task allocate inside the Swift runtime. Use ``register(_:handler:)`` on hot paths.
    public func stream(_ source: InterruptSource) throws(VFIOError) -> AsyncStream<UInt64> {
        let (stream, continuation) = AsyncStream<UInt64>.makeStream(bufferingPolicy: .unbounded)
        var registration = try register(source) { count in continuation.yield(count) }
        let token = registration.token!
        registration.token = nil
        continuation.onTermination = { [weak self] _ in self?.end(token) }
        return stream
    }

    /// Ends the registration `token` names, if it is still the one in its slot: removes the fd
    /// from epoll (the source keeps it open until then), waits for a handler running in the slot
    /// unless called from the loop thread, and lets the source close its file if that was its
    /// last use.
    func end(_ token: UInt64) {
        let (slot, tag) = Self.split(token)
        let (source, release): (InterruptSource?, Unmanaged<Handler>?) = handlers.slots.withLock { t in
            guard t.holds(slot, tag: tag), let h = t[slot].handler else { return (nil, nil) }
            let source = h.takeUnretainedValue().source
            // Cannot fail here: the source keeps the fd open, and in this epoll set, until detach.
            try? system.epollControl(epoll, EPOLL_CTL_DEL, source.fd, events: 0, data: 0)
            return (source, t.release(slot))
        }
        release?.release()
        // Also when another thread ended it first (an index disabled meanwhile): its handler
        // may still run, and this caller too is promised it has returned.
        if !onLoopThread { handlers.waitUntilNotRunning(slot) }
        source?.detach(from: self, token: token)
    }
}
