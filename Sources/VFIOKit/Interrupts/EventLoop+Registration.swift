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
            token = try table.withLock { (t) throws(VFIOError) -> UInt64 in
                guard let slot = t.free.popLast() else { throw .eventLoopFull(capacity: capacity) }
                t.slots[slot].generation &+= 1
                t.slots[slot].handler = box
                return Self.token(slot: slot, generation: t.slots[slot].generation)
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
            table.withLock { t in
                let slot = Self.split(token).slot
                t.slots[slot].handler = nil
                t.free.append(slot)
            }
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
    /// from epoll (the source keeps it open until then), waits for a running handler unless
    /// called from it, and lets the source close its file if that was its last use.
    func end(_ token: UInt64) {
        let onLoop = onLoopThread
        let (slot, generation) = Self.split(token)
        let (source, release, waitFor): (InterruptSource?, Unmanaged<Handler>?, UInt64?) = table.withLock { t in
            var source: InterruptSource?
            var release: Unmanaged<Handler>?
            if t.slots[slot].generation == generation, let h = t.slots[slot].handler {
                source = h.takeUnretainedValue().source
                try? system.epollControl(epoll, EPOLL_CTL_DEL, source!.fd, events: 0, data: 0)
                t.slots[slot].handler = nil
                t.free.append(slot)
                release = h
            }
            guard t.running == token else { return (source, release, nil) }
            // Its handler runs now: it is released once it returns, and this waits for that.
            if let release { t.releaseAfterRun = release }
            if onLoop { return (source, nil, nil) }
            t.waiters += 1
            return (source, nil, t.completedRuns &+ 1)
        }
        release?.release()
        if let target = waitFor {
            lifecycle.wait { _ in table.withLock { $0.completedRuns >= target } }
            table.withLock { $0.waiters -= 1 }
        }
        source?.detach(from: self, token: token)
    }
}
