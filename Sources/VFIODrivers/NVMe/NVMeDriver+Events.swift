#if canImport(Glibc)
import Glibc
#endif
import VFIOKit

/// Asynchronous events and the log pages that go with them.
///
/// After bring-up the driver keeps ``Configuration/asyncEventRequests`` Asynchronous Event
/// Requests outstanding (at most the controller's AERL + 1), with SMART critical warnings and,
/// where OAES says so, Namespace Attribute Changed notices enabled (Set Features 0Bh). Each
/// completion is handled on the control thread: the event's log page is read (which clears
/// it), the event and what was read go to ``recentEvents`` and the handler set with
/// ``setEventHandler(_:)``, and a new request replaces the completed one.
extension NVMeDriver {
    static let asyncEventRequestOpcode: UInt8 = 0x0c
    static let getLogPageOpcode: UInt8 = 0x02
    static let asyncEventConfigurationFeature: UInt32 = 0x0b

    // MARK: Log pages

    /// Get Log Page `id` for the controller (NSID FFFFFFFFh): `bytes` bytes (a multiple of 4,
    /// at most 4 KiB). With `retainEvent` (RAE) an event waiting on this page stays uncleared.
    public func logPage(_ id: UInt8, bytes: Int, retainEvent: Bool = false) throws(NVMeError) -> [UInt8] {
        guard bytes > 0, bytes % 4 == 0, bytes <= NVMeQueuePair.pageSize else {
            throw .invalidArgument("a log page read of \(bytes) bytes is outside 4…\(NVMeQueuePair.pageSize) in whole dwords")
        }
        let page = try framework { () throws(VFIOError) in try device.dma.allocate(NVMeQueuePair.pageSize) }
        var command = NVMeCommand(opcode: Self.getLogPageOpcode)
        command.namespaceID = 0xffff_ffff
        let dwords = UInt32(bytes / 4 - 1)
        command.cdw10 = UInt32(id) | (retainEvent ? 1 << 15 : 0) | (dwords & 0xffff) << 16
        command.cdw11 = dwords >> 16
        guard let range = NVMeDataRange(page, offset: 0, count: bytes) else { throw .invalidArgument("no room for the log page") }
        try adminCommand(command, data: range)
        MemoryBarrier.read()
        return Array(page.bytes[0..<bytes])
    }

    /// The SMART / Health Information log page (02h).
    public func smartLog() throws(NVMeError) -> NVMeSMARTLog {
        try logPage(NVMeLogPage.smartHealth, bytes: 512).withUnsafeBytes { NVMeSMARTLog(page: $0) }
    }

    /// The Error Information log page (01h): the entries in use, newest first; at most
    /// `entries`, the controller's ELPE + 1 and 64 (one page).
    public func errorLog(entries: Int = 64) throws(NVMeError) -> [NVMeErrorLogEntry] {
        let kept = supervision.events.withLock { $0.errorLogEntries }
        let count = max(1, min(entries, kept, NVMeQueuePair.pageSize / 64))
        return try logPage(NVMeLogPage.errorInformation, bytes: count * 64).withUnsafeBytes { NVMeErrorLogEntry.entries(page: $0) }
    }

    /// The Changed Namespace List log page (04h); reading it clears the list.
    public func changedNamespaceList() throws(NVMeError) -> NVMeChangedNamespaceList {
        try logPage(NVMeLogPage.changedNamespaceList, bytes: 4096).withUnsafeBytes { NVMeChangedNamespaceList(page: $0) }
    }

    // MARK: Events

    /// Calls `handler` on the control thread for each asynchronous event, after its log page
    /// was read; nil stops. It must not wait for I/O or admin commands.
    public func setEventHandler(_ handler: (@Sendable (NVMeHealthEvent) -> Void)?) {
        supervision.events.withLock { $0.handler = handler }
    }

    /// The most recent asynchronous events (at most 32), oldest first.
    public var recentEvents: [NVMeHealthEvent] { supervision.events.withLock { $0.recent } }

    /// What the last Namespace Attribute Changed event's Changed Namespace List named.
    public var changedNamespaces: NVMeChangedNamespaceList? { supervision.events.withLock { $0.changedNamespaces } }

    /// Asynchronous Event Requests outstanding now.
    public var outstandingEventRequests: Int { supervision.events.withLock { $0.outstanding } }

    // MARK: The control thread

    /// Starts the control thread, enables asynchronous events and arms the requests.
    func startSupervision() throws(NVMeError) {
        let tick = min(Duration.milliseconds(50), configuration.commandTimeout / 4)
        let reactor = try framework { () throws(VFIOError) in
            try QueueReactor(name: "nvme-admin", system: device.context.system, tickInterval: tick)
        }
        // Held at once, so a failure below still has it closed by stopSupervision().
        supervision.reactor = reactor
        reactor.onWake = { [unowned self] in supervise() }
        reactor.onTick = { [unowned self] in
            pollAdmin()
            supervise()
            refreshHealthIfDue()
        }
        if let (_, source) = supervision.adminInterrupt {
            let counter = supervision.counter
            let system = device.context.system
            let id = try framework { () throws(VFIOError) in
                try reactor.watch(source.fd.rawValue, events: QueueReactor.readable) { [unowned self] _ in
                    _ = try? system.read(source.fd, into: counter)
                    pollAdmin()
                    supervise()
                }
            }
            supervision.adminInterrupt = (id, source)
        }
        try framework { () throws(VFIOError) in try reactor.start() }
        let (limit, notices, errorEntries) = try identify(cns: 1, namespaceID: 0) { page in
            (Int(page[259]) + 1, page.loadUnaligned(fromByteOffset: 92, as: UInt32.self) & (1 << 8) != 0, Int(page[262]) + 1)
        }
        // SMART critical warnings 0–4, and Namespace Attribute Notices where supported.
        let enabled: UInt32 = 0x1f | (notices ? 1 << 8 : 0)
        let accepted =
            (try? admin.withLock { (a) throws(NVMeError) -> UInt32 in
                guard let pair = a else { throw .invalidArgument("no admin queue") }
                return try runAdmin(pair, Self.setAsyncEventConfiguration(enabled))
            }) != nil
        supervision.events.withLock { e in
            e.limit = max(0, min(configuration.asyncEventRequests, limit))
            e.configuration = accepted ? enabled : nil
            e.errorLogEntries = errorEntries
        }
        supervision.ready.store(true, ordering: .releasing)
        armAsyncEvents()
        refreshHealth(because: "bring-up")
    }

    /// Ends the control thread (its job finishes first) and closes its files.
    func stopSupervision() {
        supervision.ready.store(false, ordering: .releasing)
        guard let reactor = supervision.reactor else { return }
        reactor.run { [self] in
            if let (id, source) = supervision.adminInterrupt, id >= 0 { reactor.unwatch(id, fd: source.fd.rawValue) }
            supervision.adminInterrupt = nil
        }
        // Cannot fail in a way shutdown could act on: an epoll set, an eventfd and a timerfd
        // have nothing to flush, and Linux releases them even when close reports an error.
        try? reactor.close()
    }

    static func setAsyncEventConfiguration(_ value: UInt32) -> NVMeCommand {
        var c = NVMeCommand(opcode: NVMeCommand.AdminOpcode.setFeatures)
        c.cdw10 = asyncEventConfigurationFeature
        c.cdw11 = value
        return c
    }

    /// After a reset: sets Asynchronous Event Configuration again, if bring-up set it.
    func configureAsyncEvents(_ pair: NVMeQueuePair) throws(NVMeError) {
        let (value, _) = supervision.events.withLock { e in
            defer { e.outstanding = 0 }
            return (e.configuration, e.outstanding)
        }
        if let value { _ = try runAdmin(pair, Self.setAsyncEventConfiguration(value)) }
    }

    /// Submits Asynchronous Event Requests until the limit is outstanding. They never time out.
    func armAsyncEvents() {
        guard supervision.ready.load(ordering: .acquiring), failureEpoch == 0 else { return }
        admin.withLock { a in
            guard let pair = a else { return }
            supervision.events.withLock { e in
                while e.outstanding < e.limit, pair.canSubmit, (try? pair.submit(NVMeCommand(opcode: Self.asyncEventRequestOpcode))) != nil
                {
                    e.outstanding += 1
                }
            }
            pair.ring()
        }
    }

    /// With the admin lock held: reaps the admin CQ, keeping Asynchronous Event Request
    /// completions for the control thread (other commands' outcomes stay in their slots).
    func reapAdmin(_ pair: NVMeQueuePair) {
        var events = false
        pair.poll { completion in
            guard pair.slots[Int(completion.commandID)].command.opcode == Self.asyncEventRequestOpcode else { return }
            supervision.events.withLock { e in
                e.outstanding -= 1
                if completion.succeeded {
                    e.pending.append(completion.result)
                } else if completion.status == NVMeStatus(codeType: 1, code: 0x05) {
                    // Asynchronous Event Request Limit Exceeded: keep fewer.
                    e.limit = e.outstanding
                }
            }
            events = true
        }
        if events, let reactor = supervision.reactor, !reactor.onReactorThread { reactor.wake() }
    }

    /// On the control thread's tick: reaps the admin CQ unless an admin command is doing so.
    private func pollAdmin() {
        guard supervision.ready.load(ordering: .acquiring) else { return }
        _ = admin.withLockIfAvailable { a in
            if let a { reapAdmin(a) }
        }
    }

    /// On the control thread: a requested reset, then the events waiting.
    private func supervise() {
        recoverIfRequested()
        while let raw = supervision.events.withLock({ $0.pending.isEmpty ? nil : $0.pending.removeFirst() }) {
            handle(NVMeAsyncEvent(raw: raw))
        }
    }

    private func handle(_ event: NVMeAsyncEvent) {
        let detail: NVMeHealthEvent.Detail
        do throws(NVMeError) {
            switch event.logPage {
            case NVMeLogPage.smartHealth:
                let log = try smartLog()
                recordHealth(log, because: "asynchronous event: \(event.name)")
                detail = .smart(log)
            case NVMeLogPage.errorInformation: detail = .errors(try errorLog())
            case NVMeLogPage.changedNamespaceList:
                let list = try changedNamespaceList()
                namespacesChanged(list)
                detail = .changedNamespaces(list)
            default:
                _ = try logPage(event.logPage, bytes: 512)
                detail = .unparsed
            }
        } catch {
            detail = .unreadable(error.description)
        }
        let record = NVMeHealthEvent(event: event, detail: detail)
        let handler = supervision.events.withLock { e in
            e.recent.append(record)
            if e.recent.count > NVMeSupervision.recentLimit { e.recent.removeFirst() }
            return e.handler
        }
        handler?(record)
        armAsyncEvents()
    }

    /// Namespace Attribute Changed: the namespaces named are recorded for the caller.
    private func namespacesChanged(_ list: NVMeChangedNamespaceList) {
        supervision.events.withLock { $0.changedNamespaces = list }
        // A failed rescan keeps the table as it was and is not this event's to report: the
        // next event, or a caller's own rescanNamespaces(), tries again.
        _ = try? rescanNamespaces()
    }
}
