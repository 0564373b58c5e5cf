#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import Synchronization
import SystemPackage

/// One thread that owns a data-path queue for its whole life: an epoll set with a wake
/// eventfd, a periodic timerfd, any files the owner watches, and an optional poller that is
/// called in a busy loop while it reports work outstanding (a polled NVMe queue), the thread
/// blocking in `epoll_wait` otherwise.
///
/// Guarantees:
/// - Every hook (``onWake``, ``poller``, ``onTick``, watch handlers, ``run(_:)`` bodies) runs on
///   the reactor's thread, one at a time: what they share needs no lock.
/// - ``wake()`` is safe from any thread and costs one eventfd write only when the thread may
///   be asleep (``prepareToSleep``'s flag, checked with sequentially consistent atomics).
///   After ``close()`` a wake or stop writes nothing.
/// - ``stop()`` returns once the thread has run its last hook and exited.
/// Hooks are set before ``start()``; watches are added and ended on the reactor's thread (or
/// before start).
public final class QueueReactor: @unchecked Sendable {
    /// Called after the wake eventfd fired or before sleeping: drain the mailbox.
    public var onWake: () -> Void = {}
    /// Called in a loop while it returns true; the thread sleeps in epoll once it returns false.
    public var poller: (() -> Bool)?
    /// Called every ``tickInterval`` (the timerfd): deadlines.
    public var onTick: () -> Void = {}
    /// How often ``onTick`` runs, fixed when the reactor is made.
    public let tickInterval: Duration
    /// epoll's EPOLLIN and EPOLLOUT, for ``watch(_:events:_:)`` and ``modify(_:fd:events:)``.
    public static let readable = EPOLLIN.rawValue
    /// epoll's EPOLLOUT: the watched file can be written.
    public static let writable = EPOLLOUT.rawValue
    /// epoll's EPOLLHUP and EPOLLERR, which a handler may get whatever it watches for.
    public static let hungUp = EPOLLHUP.rawValue
    /// epoll's EPOLLERR: an error condition on the watched file.
    public static let failed = EPOLLERR.rawValue
    /// What the reactor is called in its files' names and in errors, such as the queue it owns.
    public let name: String

    private let system: any SystemCalls
    /// The reactor's own files, until ``close()``.
    private let files: Mutex<Files?>
    /// The files' descriptors for the thread's loop; valid until ``close()``, which comes after
    /// the thread exited.
    private let epoll: FileDescriptor, wakeFD: FileDescriptor, timerFD: FileDescriptor
    private var watches: [((UInt32) -> Void)?] = []
    private let asleep = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let threadID = Atomic<UInt>(0)
    /// Control-path work handed to the thread by ``run(_:)``, and the thread's life.
    private let control = Monitor(Control())
    private static let wakeToken = UInt64.max, tickToken = UInt64.max - 1

    private struct Control: @unchecked Sendable {
        var jobs: [(id: UInt64, body: () -> Void)] = []
        var nextJob: UInt64 = 0
        var doneJobs: UInt64 = 0
        var running = false
    }

    /// The epoll set, its wake eventfd and its timerfd.
    private struct Files: ~Copyable {
        var epoll: OwnedFileDescriptor, wake: OwnedFileDescriptor, timer: OwnedFileDescriptor

        consuming func close() throws(VFIOError) {
            // Each is closed even when an earlier one failed; the first failure is reported.
            var failure: VFIOError?
            do { try timer.close() } catch { failure = error }
            do { try wake.close() } catch { failure = failure ?? error }
            do { try epoll.close() } catch { failure = failure ?? error }
            if let failure { throw failure }
        }
    }

    /// Creates the epoll set, wake eventfd and timerfd; ``start()`` starts the thread.
    public init(
        name: String, system: any SystemCalls = HostSystemCalls.shared, tickInterval: Duration = .milliseconds(100)
    ) throws(VFIOError) {
        self.name = name
        self.system = system
        self.tickInterval = tickInterval
        // On a failure below, the files made so far close as they go out of scope.
        let epoll = OwnedFileDescriptor(
            try attempt(SystemCall("epoll_create1", detail: "for \(name)")) { () throws(Errno) in try system.epollCreate() },
            name: "\(name)'s epoll set", system: system)
        let wake = OwnedFileDescriptor(
            try attempt(SystemCall("eventfd", detail: "for \(name)'s wake-ups")) { () throws(Errno) in
                try system.eventfd(initialValue: 0, flags: Int32(EFD_NONBLOCK))
            }, name: "\(name)'s wake eventfd", system: system)
        let timer = OwnedFileDescriptor(
            try attempt(SystemCall("timerfd_create", detail: "for \(name), every \(tickInterval)")) { () throws(Errno) in
                try system.periodicTimer(interval: tickInterval)
            }, name: "\(name)'s timerfd", system: system)
        try attempt(SystemCall("epoll_ctl", detail: "setting up \(name)'s epoll set")) { () throws(Errno) in
            try system.epollControl(epoll.rawValue, EPOLL_CTL_ADD, wake.rawValue, events: EPOLLIN.rawValue, data: Self.wakeToken)
            try system.epollControl(epoll.rawValue, EPOLL_CTL_ADD, timer.rawValue, events: EPOLLIN.rawValue, data: Self.tickToken)
        }
        (self.epoll, wakeFD, timerFD) = (epoll.rawValue, wake.rawValue, timer.rawValue)
        files = Mutex(Files(epoll: epoll, wake: wake, timer: timer))
    }

    /// ``close()`` ran (the thread is gone by then; a running thread holds the reactor).
    deinit {
        assert(files.withLock { $0 == nil }, "QueueReactor \(name) released without close()")
    }

    /// Stops the thread (``stop()``) and closes the epoll set, wake eventfd and timerfd,
    /// reporting the first failure; each is closed all the same. The watched files stay their
    /// owners'. Calling it again does nothing. Not from the reactor's thread.
    public func close() throws(VFIOError) {
        precondition(!onReactorThread, "QueueReactor.close() on its own thread")
        stop()
        try files.withLock { $0.take() }?.close()
    }

    /// True on the reactor's thread.
    public var onReactorThread: Bool { threadID.load(ordering: .acquiring) == Self.currentThreadID }

    /// Starts the thread.
    public func start() throws(VFIOError) {
        try control.withLock { (c) throws(VFIOError) in
            guard !c.running else { return }
            stopping.store(false, ordering: .releasing)
            try startDetachedThread(for: "for \(name)") {
                self.loop()
                self.control.update { $0.running = false }
            }
            c.running = true
        }
    }

    /// Stops the thread after its current hook; returns once it exited (at once on the thread).
    public func stop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        signal()
        guard !onReactorThread else { return }
        control.wait { !$0.running }
    }

    /// Wakes the thread to run ``onWake``, if it may be asleep.
    @inline(__always)
    public func wake() {
        if asleep.load(ordering: .sequentiallyConsistent) { signal() }
    }

    /// Runs `body` on the reactor's thread and returns once it has run; runs it at once when
    /// called there. Control path: it takes a lock and allocates.
    public func run(_ body: () -> Void) {
        if onReactorThread || !control.withLock({ $0.running }) {
            body()
            return
        }
        withoutActuallyEscaping(body) { body in
            let id = control.withLock { c in
                c.nextJob += 1
                c.jobs.append((c.nextJob, body))
                return c.nextJob
            }
            signal()
            // A thread that exited before running it leaves it queued: it runs here instead.
            let orphan = control.withLock(after: { $0.doneJobs >= id || !$0.running }) { c in
                guard let k = c.jobs.firstIndex(where: { $0.id == id }) else { return false }
                c.jobs.remove(at: k)
                return true
            }
            if orphan { body() }
        }
    }

    /// Watches `fd` for `events`; `handler` gets the epoll events. On the reactor's thread or
    /// before start. The caller keeps owning `fd` and ends the watch before closing it.
    public func watch(_ fd: Int32, events: UInt32, _ handler: @escaping (UInt32) -> Void) throws(VFIOError) -> Int {
        let id = watches.firstIndex { $0 == nil } ?? watches.count
        try attempt(SystemCall("epoll_ctl", detail: "ADD fd \(fd) to \(name)")) { () throws(Errno) in
            try system.epollControl(epoll, EPOLL_CTL_ADD, FileDescriptor(rawValue: fd), events: events, data: UInt64(id))
        }
        if id == watches.count { watches.append(handler) } else { watches[id] = handler }
        return id
    }

    /// Changes the events watch `id` on `fd` waits for (0: only errors and hang-ups). On the
    /// reactor's thread.
    public func modify(_ id: Int, fd: Int32, events: UInt32) throws(VFIOError) {
        try attempt(SystemCall("epoll_ctl", detail: "MOD fd \(fd) in \(name)")) { () throws(Errno) in
            try system.epollControl(epoll, EPOLL_CTL_MOD, FileDescriptor(rawValue: fd), events: events, data: UInt64(id))
        }
    }

    /// Ends watch `id` on `fd`; its handler does not run again.
    public func unwatch(_ id: Int, fd: Int32) {
        guard watches.indices.contains(id), watches[id] != nil else { return }
        // Cannot fail for a file this set watches; a closed fd was removed by the kernel already.
        try? system.epollControl(epoll, EPOLL_CTL_DEL, FileDescriptor(rawValue: fd), events: 0, data: 0)
        watches[id] = nil
    }

    /// Writes the wake eventfd while it is open: after ``close()`` its number may be another
    /// file's, so nothing is written (the lock orders this against ``close()``).
    private func signal() {
        files.withLock { files in
            guard files != nil else { return }
            var one: UInt64 = 1
            // An eventfd write fails only when the counter would overflow: it is readable anyway.
            _ = try? withUnsafeBytes(of: &one) { (b) throws(Errno) in try system.write(wakeFD, from: b) }
        }
    }

    private func runJobs() {
        var last: UInt64?
        do {
            // The bodies are released before their callers are told they ran.
            let jobs = control.withLock { c in
                defer { c.jobs.removeAll() }; return c.jobs
            }
            for job in jobs { job.body() }
            last = jobs.last?.id
        }
        if let last { control.update { $0.doneJobs = last } }
    }

    private func loop() {
        threadID.store(Self.currentThreadID, ordering: .releasing)
        defer { threadID.store(0, ordering: .releasing) }
        let batch = EpollBatch()
        defer { batch.deallocate() }
        let (events, data, counter) = (batch.events, batch.data, batch.counter)
        while !stopping.load(ordering: .sequentiallyConsistent) {
            onWake()
            if let poller, poller() {
                // Busy: look at the files without sleeping.
                if let n = try? system.epollWait(epoll, events: events, data: data, capacity: EpollBatch.capacity, timeoutMilliseconds: 0),
                    n > 0
                {
                    handle(n, events, data, counter)
                }
                continue
            }
            asleep.store(true, ordering: .sequentiallyConsistent)
            // Work posted before the flag was set is drained before sleeping.
            onWake()
            if let poller, poller() {
                asleep.store(false, ordering: .sequentiallyConsistent)
                continue
            }
            let n = (try? system.epollWait(epoll, events: events, data: data, capacity: EpollBatch.capacity, timeoutMilliseconds: -1)) ?? 0
            asleep.store(false, ordering: .sequentiallyConsistent)
            handle(n, events, data, counter)
        }
        runJobs()
    }

    private func handle(
        _ n: Int, _ events: UnsafeMutablePointer<UInt32>, _ data: UnsafeMutablePointer<UInt64>, _ counter: UnsafeMutableRawBufferPointer
    ) {
        for i in 0..<n {
            switch data[i] {
            case Self.wakeToken:
                _ = try? system.read(wakeFD, into: counter)
                runJobs()
            case Self.tickToken:
                // Cannot fail: the timerfd is readable (epoll said so) and 8 bytes is its size.
                _ = try? system.read(timerFD, into: counter)
                onTick()
            default:
                let id = Int(data[i])
                if watches.indices.contains(id), let handler = watches[id] { handler(events[i]) }
            }
        }
    }

    private static var currentThreadID: UInt { UInt(bitPattern: Int(bitPattern: UInt(pthread_self()))) }
}
