#if canImport(Glibc)
import Glibc
#endif
import VFIOKit

/// An I/O queue pair and the one thread that owns it for its whole life (a ``QueueReactor``):
/// only that thread submits to the SQ, reaps the CQ and touches the slots, so there is no lock
/// on either path.
///
/// Async requests arrive through the ``NVMeMailbox``; when the SQ is full they wait in the
/// owner's backlog (a fixed ring) and are submitted as completions free slots. A polled queue
/// is polled by its owner while commands are outstanding; an interrupt-driven queue's CQ
/// eventfd is watched by the owner's epoll set. Deadlines are checked on the owner's timerfd.
/// A frontend that serves this queue runs on the owner too (``reactor``'s watches).
public final class NVMeQueueOwner: @unchecked Sendable {
    public let pair: NVMeQueuePair
    /// The owner thread: watch a frontend's files here, run control work with `run`.
    public let reactor: QueueReactor
    let mailbox: NVMeMailbox
    private unowned let driver: NVMeDriver
    private let polled: Bool
    private let system: any SystemCalls
    /// Mailbox records waiting for a free SQ slot, oldest first.
    private let backlog: UnsafeMutablePointer<Int>
    private var backlogHead = 0, backlogCount = 0
    /// The interrupt watch, if any.
    private var interrupt: (id: Int, source: InterruptSource)?
    private var failedEpoch = 0
    private let counter = UnsafeMutableRawBufferPointer.allocate(byteCount: 8, alignment: 8)

    init(pair: NVMeQueuePair, driver: NVMeDriver, polled: Bool, system: any SystemCalls) throws(NVMeError) {
        self.pair = pair
        self.driver = driver
        self.polled = polled
        self.system = system
        mailbox = NVMeMailbox(capacity: max(1024, 4 * pair.entries))
        pair.mailbox = mailbox
        backlog = .allocate(capacity: mailbox.capacity)
        let tick = min(.milliseconds(100), driver.configuration.commandTimeout / 4)
        reactor = try framework { () throws(VFIOError) in
            try QueueReactor(name: "nvme-q\(pair.id)", system: system, tickInterval: tick)
        }
        reactor.onWake = { [unowned self] in self.drain() }
        reactor.onTick = { [unowned self] in self.expire() }
        if polled { reactor.poller = { [unowned self] in self.pollOnce() } }
    }

    deinit {
        backlog.deallocate()
        counter.deallocate()
    }

    /// Watches the CQ's MSI-X vector (before ``start()``).
    func watchInterrupts(_ source: InterruptSource) throws(NVMeError) {
        let id = try framework { () throws(VFIOError) in
            try reactor.watch(source.fd.rawValue, events: QueueReactor.readable) { [unowned self] _ in
                _ = try? system.read(source.fd, into: counter)
                _ = pair.poll { _ in }
                submitBacklog()
            }
        }
        interrupt = (id, source)
    }

    func start() throws(NVMeError) { try framework { () throws(VFIOError) in try reactor.start() } }

    /// Stops the owner thread; its interrupt watch ends first.
    func stop() {
        reactor.run { [self] in
            if let interrupt { reactor.unwatch(interrupt.id, fd: interrupt.source.fd.rawValue) }
            interrupt = nil
        }
        reactor.stop()
    }

    // MARK: The async requests (any thread)

    /// Submits `command` on the owner and waits for its outcome; the task has suspended before
    /// the owner can see the request.
    func perform(
        _ command: NVMeCommand, _ data: NVMeDataRange?, segments: UnsafeBufferPointer<NVMeDataRange>? = nil, mode: NVMeTransferMode = .automatic
    ) async -> Result<UInt32, NVMeError> {
        guard let i = mailbox.claim() else { return .failure(.queueFull(queue: pair.id)) }
        mailbox.records[i].command = command
        mailbox.records[i].data = data
        mailbox.records[i].segments = segments
        mailbox.records[i].mode = mode
        await withUnsafeContinuation { (waiter: UnsafeContinuation<Void, Never>) in
            mailbox.records[i].waiter = waiter
            mailbox.post(i)
            reactor.wake()
        }
        return mailbox.take(i)
    }

    // MARK: The owner thread

    private func drain() {
        if driver.failureEpoch != failedEpoch { failAll() }
        mailbox.drain { i in
            if backlogCount == 0, pair.canSubmit { submit(i) } else { enqueue(i) }
        }
        pair.ring()
    }

    @inline(__always)
    private func submit(_ i: Int) {
        if driver.failureEpoch != 0, let error = driver.laterError {
            mailbox.complete(i, .failure(error))
            return
        }
        do {
            let record = mailbox.records + i
            let cid = if let segments = record.pointee.segments {
                try pair.submit(record.pointee.command, segments: segments, mode: record.pointee.mode)
            } else {
                try pair.submit(record.pointee.command, data: record.pointee.data)
            }
            pair.setRequest(cid, i)
        } catch {
            mailbox.complete(i, .failure(error))
        }
    }

    private func enqueue(_ i: Int) {
        backlog[(backlogHead + backlogCount) % mailbox.capacity] = i
        backlogCount += 1
    }

    private func submitBacklog() {
        while backlogCount > 0, pair.canSubmit {
            let i = backlog[backlogHead]
            backlogHead = (backlogHead + 1) % mailbox.capacity
            backlogCount -= 1
            submit(i)
        }
        pair.ring()
    }

    /// One pass of a polled queue; true while commands are outstanding.
    private func pollOnce() -> Bool {
        if pair.poll({ _ in }) > 0 { submitBacklog() }
        return pair.outstanding > 0 || backlogCount > 0
    }

    /// Aborts commands past their deadline; a failed abort resets the controller.
    private func expire() {
        if driver.failureEpoch != failedEpoch { failAll() }
        guard driver.failureEpoch == 0 else { return }
        let limit = UInt64(driver.configuration.commandTimeout / .nanoseconds(1))
        pair.expire(olderThan: limit) { cid, command in
            driver.abort(queue: pair.id, commandID: cid, name: command.name(admin: false))
        }
        if driver.failureEpoch != failedEpoch { failAll() }
    }

    /// The controller was given up on: every outstanding and waiting request fails.
    private func failAll() {
        failedEpoch = driver.failureEpoch
        guard let error = driver.outstandingError else { return }
        pair.failAll(error)
        while backlogCount > 0 {
            let i = backlog[backlogHead]
            backlogHead = (backlogHead + 1) % mailbox.capacity
            backlogCount -= 1
            mailbox.complete(i, .failure(error))
        }
    }
}
