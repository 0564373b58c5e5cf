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
/// A frontend that serves this queue runs on the owner too (``reactor``'s watches), submitting
/// to ``pair`` directly; the owner's own polls hand those commands' completions to ``direct``.
public final class NVMeQueueOwner: @unchecked Sendable {
    public let pair: NVMeQueuePair
    /// The owner thread: watch a frontend's files here, run control work with `run`.
    public let reactor: QueueReactor
    /// Where the completions of commands submitted to ``pair`` directly go (not through the
    /// mailbox) when the owner polls: set and cleared on the owner thread.
    public var direct: (any NVMeDirectCompletions)?
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
        mailbox.retryLimit = max(0, driver.configuration.retries)
        mailbox.retryBackoff = UInt64(max(.zero, driver.configuration.retryBackoff) / .nanoseconds(1))
        mailbox.retryDelays = driver.retryDelays
        // The tick checks CSTS, deadlines and retries: a dead controller is seen within 10 ms.
        let tick = min(.milliseconds(10), driver.configuration.commandTimeout / 4)
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
                pollDirect()
                submitBacklog()
            }
        }
        interrupt = (id, source)
    }

    func start() throws(NVMeError) { try framework { () throws(VFIOError) in try reactor.start() } }

    /// Stops the owner thread and closes its files; its interrupt watch ends first.
    func stop() {
        reactor.run { [self] in
            if let interrupt { reactor.unwatch(interrupt.id, fd: interrupt.source.fd.rawValue) }
            interrupt = nil
        }
        // Cannot fail in a way shutdown could act on: an epoll set, an eventfd and a timerfd
        // have nothing to flush, and Linux releases them even when close reports an error.
        try? reactor.close()
    }

    /// True once the driver gave the controller up: a frontend refuses new commands (their
    /// outstanding ones were failed to ``direct``).
    public var controllerFailed: Bool { driver.failureEpoch != 0 }

    // MARK: The async requests (any thread)

    /// Submits `command` on the owner and waits for its outcome; the task has suspended before
    /// the owner can see the request.
    func perform(
        _ command: NVMeCommand, _ data: NVMeDataRange?, segments: UnsafeBufferPointer<NVMeDataRange>? = nil,
        mode: NVMeTransferMode = .automatic
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
        let holding = recovering
        mailbox.drain { i in
            if !holding, backlogCount == 0, pair.canSubmit { submit(i) } else { enqueue(i) }
        }
        pair.ring()
    }

    /// A reset in place is under way: nothing goes to the controller.
    @inline(__always)
    private var recovering: Bool { driver.supervision.recovering.load(ordering: .sequentiallyConsistent) }

    @inline(__always)
    private func submit(_ i: Int) {
        if driver.failureEpoch != 0, let error = driver.laterError {
            mailbox.complete(i, .failure(error))
            return
        }
        do {
            let record = mailbox.records + i
            let cid =
                if let segments = record.pointee.segments {
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
        if recovering { return }
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
        pollDirect()
        // A frontend's own poll may have freed the slots the backlog waits for.
        if backlogCount > 0 { submitBacklog() }
        return pair.outstanding > 0 || backlogCount > 0
    }

    /// Reaps the CQ: mailbox requests complete to their waiters, the rest go to ``direct``.
    @inline(__always)
    private func pollDirect() {
        guard let direct else {
            pair.poll { _ in }
            return
        }
        if pair.poll({ direct.complete($0) }) > 0 { direct.polled() }
    }

    /// The tick: checks CSTS (a fatal status or all ones has the controller reset in place),
    /// resubmits retries whose back-off is over and aborts commands past their deadline; a
    /// failed abort has the controller reset.
    private func expire() {
        if driver.failureEpoch != failedEpoch { failAll() }
        guard driver.failureEpoch == 0, !recovering else { return }
        let resets = driver.supervision.resets.load(ordering: .acquiring)
        if let trouble = driver.controllerTrouble() {
            driver.requestRecovery(because: trouble, resetsSeen: resets)
            return
        }
        if mailbox.parkedCount > 0 {
            mailbox.takeParked { i in
                if backlogCount == 0, pair.canSubmit { submit(i) } else { enqueue(i) }
            }
            pair.ring()
        }
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
        if let direct {
            pair.failAll(error) { direct.complete($0) }
            direct.polled()
        } else {
            pair.failAll(error)
        }
        while backlogCount > 0 {
            let i = backlog[backlogHead]
            backlogHead = (backlogHead + 1) % mailbox.capacity
            backlogCount -= 1
            mailbox.complete(i, .failure(error))
        }
        mailbox.takeParked(all: true) { i in mailbox.complete(i, .failure(error)) }
    }

    /// After a reset in place (the control thread runs it here): what was outstanding goes
    /// again where that is safe, and the requests held meanwhile are submitted.
    func resumeAfterReset() {
        mailbox.retryDelays = driver.retryDelays
        let limit = driver.configuration.retries
        pair.resubmitOutstanding(
            { command, resets in
                resets < limit && NVMeQueueOwner.isSafeToRepeat(command)
            },
            failure: { command, resets in
                let name = command.name(admin: false)
                guard NVMeQueueOwner.isSafeToRepeat(command) else { return .interruptedByReset(command: name) }
                return .timeout(
                    command: name, milliseconds: driver.timeoutMilliseconds,
                    recovery: "the controller was reset \(resets + 1) times while it was outstanding, so the driver gave up on it")
            }, direct: { [direct] in direct?.complete($0) })
        direct?.polled()
        submitBacklog()
        pair.ring()
    }

    /// Reads, writes, flushes and write zeroes give the same result when repeated.
    static func isSafeToRepeat(_ command: NVMeCommand) -> Bool {
        switch command.opcode {
        case NVMeCommand.Opcode.read, NVMeCommand.Opcode.write, NVMeCommand.Opcode.flush, 0x08: true
        default: false
        }
    }
}

/// A frontend that submits to an owner's pair directly from the owner thread (an export
/// queue): it is told of its commands' completions when the owner polls. Both calls run on
/// the owner thread and must allocate nothing.
public protocol NVMeDirectCompletions: AnyObject {
    /// One completion of a command submitted directly (the slot is already free).
    func complete(_ completion: NVMeCompletion)
    /// Called after a poll that consumed completions: a frontend answers its clients here.
    func polled()
}
