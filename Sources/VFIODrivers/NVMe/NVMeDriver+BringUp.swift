#if canImport(Glibc)
import Glibc
#endif
import VFIOKit

extension NVMeDriver {
    /// Resets and enables the controller, identifies it and creates the I/O queues. On
    /// failure everything set up so far is undone.
    public func bringUp() throws(NVMeError) {
        do { try bringUpSteps() } catch {
            if case .invalidArgument = error { throw error }
            shutDown()
            throw error
        }
    }

    private func bringUpSteps() throws(NVMeError) {
        guard !active.exchange(true, ordering: .acquiringAndReleasing) else {
            throw .invalidArgument("the driver is already brought up: shut it down first")
        }
        failure.withLock { $0 = nil }
        failedEpoch.store(0, ordering: .releasing)
        supervision.clear()
        try disable()
        try framework { () throws(VFIOError) in try device.setBusMaster(true) }
        let adminPair = try makeAdminQueue()
        admin.withLock { $0 = adminPair }
        try enable(admin: adminPair)

        let identity = try identifyController()
        controller = identity
        limits = try identifyLimits()
        try enableRetryDelays { (command, data) throws(NVMeError) in try adminCommand(command, data: data) }
        let found = try identifyNamespaces()
        namespaceTable.withLock { $0 = found }
        // MDTS 0 (no limit) is taken as 4 MiB, and any MDTS as at most 32 MiB: each queue slot
        // holds PRP list pages for the largest transfer (one page per 2 MiB).
        let exponent = Int(identity.maxDataTransferExponent)
        maxTransfer = exponent == 0 ? 4 << 20 : min(capabilities.minPageSize << min(exponent, 20), 32 << 20)
        try createQueues(maxTransfer: maxTransfer, sgl: identity.sgl)
        try startSupervision()
    }

    /// A fresh admin queue pair, sized by the configuration and CAP.MQES.
    func makeAdminQueue() throws(NVMeError) -> NVMeQueuePair {
        let entries = min(configuration.adminQueueDepth, capabilities.maxQueueEntries, 4096)
        return try NVMeQueuePair(
            id: 0, entries: entries, maxTransfer: NVMeQueuePair.pageSize, dma: device.dma, bar: bar,
            doorbellStride: capabilities.doorbellStride)
    }

    /// Points the (disabled) controller at the admin queue `pair`, enables it and waits for RDY.
    func enable(admin pair: NVMeQueuePair) throws(NVMeError) {
        registers.write(NVMeRegisters.adminQueueAttributes, UInt32(pair.entries - 1) << 16 | UInt32(pair.entries - 1))
        registers.write(NVMeRegisters.adminSubmissionQueue, pair.submissionQueue.deviceAddress)
        registers.write(NVMeRegisters.adminCompletionQueue, pair.completionQueue.deviceAddress)
        registers.write(NVMeRegisters.configuration, NVMeControl.entrySizes | NVMeControl.enable)
        try waitForReady(true)
    }

    // MARK: Identify

    func identifyController() throws(NVMeError) -> NVMeControllerIdentity {
        try identify(cns: 1, namespaceID: 0) { NVMeControllerIdentity(page: $0) }
    }

    /// The NVM command set's limits (CNS 06h, CSI 00h in CDW11 bits 31:24); a controller that
    /// answers Invalid Field or Invalid Opcode has no such structure, so sets no limits.
    func identifyLimits() throws(NVMeError) -> NVMeNVMLimits {
        do {
            return try identify(cns: 6, namespaceID: 0) { NVMeNVMLimits(page: $0, minPageSize: capabilities.minPageSize) }
        } catch {
            if case let .failed(_, status) = error, status == .invalidField || status == .invalidOpcode { return NVMeNVMLimits() }
            throw error
        }
    }

    /// The active namespaces, each identified (CNS 0). The Active Namespace ID list (CNS 2)
    /// holds up to 1024 ids above the NSID given, ascending; a full page is followed by the next,
    /// from its last id.
    func identifyNamespaces() throws(NVMeError) -> [NVMeNamespaceIdentity] {
        var ids: [UInt32] = []
        var after: UInt32 = 0
        while true {
            let page = try identify(cns: 2, namespaceID: after) { list in
                Array((0..<1024).lazy.map { list.load(fromByteOffset: 4 * $0, as: UInt32.self) }.prefix { $0 != 0 })
            }
            ids += page
            guard page.count == 1024, let last = page.last, last < 0xffff_fffe else { break }
            after = last
        }
        var result: [NVMeNamespaceIdentity] = []
        for id in ids {
            let ns = try identify(cns: 0, namespaceID: id) { NVMeNamespaceIdentity(id: id, page: $0) }
            // Zeroes: it went inactive since the list was read.
            if ns.size > 0 { result.append(ns) }
        }
        return result
    }

    /// Runs Identify into a fresh page and parses it with `parse`.
    func identify<T>(cns: UInt32, namespaceID: UInt32, _ parse: (UnsafeRawBufferPointer) -> T) throws(NVMeError) -> T {
        let page = try framework { () throws(VFIOError) in try device.dma.allocate(NVMeQueuePair.pageSize) }
        try adminCommand(.identify(cns: cns, namespaceID: namespaceID, page: page.deviceAddress))
        MemoryBarrier.read()
        return parse(UnsafeRawBufferPointer(page.bytes))
    }

    // MARK: Queues

    private func createQueues(maxTransfer: Int, sgl: NVMeSGLSupport) throws(NVMeError) {
        let wanted = max(1, configuration.queues)
        let granted = try adminCommand(.setNumberOfQueues(wanted))
        let count = min(wanted, Int(granted & 0xffff) + 1, Int(granted >> 16) + 1)
        let entries = min(max(2, configuration.queueDepth), capabilities.maxQueueEntries)
        var sources: [InterruptSource] = []
        if !configuration.polled {
            sources = try framework { () throws(VFIOError) in try device.interrupts.enable(.msix, vectors: count + 1) }
            msixEnabled = true
            supervision.adminInterrupt = (-1, sources[0])
        }
        for id in 1...count {
            let pair = try NVMeQueuePair(
                id: id, entries: entries, maxTransfer: maxTransfer, sgl: sgl, dma: device.dma, bar: bar,
                doorbellStride: capabilities.doorbellStride)
            do {
                try adminCommand(
                    .createCompletionQueue(
                        id: id, entries: entries, memory: pair.completionQueue.deviceAddress, vector: configuration.polled ? nil : id))
                try adminCommand(
                    .createSubmissionQueue(
                        id: id, entries: entries, memory: pair.submissionQueue.deviceAddress, completionQueue: id))
            }
            let owner = try NVMeQueueOwner(pair: pair, driver: self, polled: configuration.polled, system: device.context.system)
            do {
                if !configuration.polled { try owner.watchInterrupts(sources[id]) }
                try owner.start()
            } catch {
                owner.stop()
                throw error
            }
            owners.append(owner)
        }
    }

    // MARK: Shutdown

    /// Deletes the I/O queues, shuts the controller down (CC.SHN, waiting up to CAP.TO for
    /// CSTS.SHST = complete), disables it and releases interrupts, DMA memory and bus
    /// mastering. Safe to call more than once, and after a failed bring-up. Returns true when
    /// the controller reported the shutdown complete, or there was nothing to shut down.
    @discardableResult
    public func shutDown() -> Bool {
        guard active.exchange(false, ordering: .acquiringAndReleasing) else { return true }
        // The control thread ends first: no reset or event handling runs after this.
        stopSupervision()
        // The owner threads end first: nothing touches the queues after this.
        for owner in owners { owner.stop() }
        let queues = owners
        owners = []
        let status = registers.read(NVMeRegisters.status)
        var shutDownComplete = false
        let usable =
            failedEpoch.load(ordering: .acquiring) == 0 && status & (NVMeControl.ready | NVMeControl.fatalStatus) == NVMeControl.ready
        if usable {
            // Best effort: a queue the controller refuses to delete goes with CC.SHN and CC.EN.
            for q in queues.reversed() {
                _ = try? adminCommand(.deleteQueue(id: q.pair.id, submission: true))
                _ = try? adminCommand(.deleteQueue(id: q.pair.id, submission: false))
            }
            let cc = registers.read(NVMeRegisters.configuration)
            registers.write(NVMeRegisters.configuration, (cc & ~NVMeControl.shutdownMask) | NVMeControl.shutdownNormal)
            shutDownComplete = waitForShutdown()
        }
        try? disable()
        if msixEnabled { try? device.interrupts.disable(.msix) }
        msixEnabled = false
        admin.withLock { $0 = nil }
        try? device.setBusMaster(false)
        return shutDownComplete
    }

    /// Waits for CSTS.SHST to say the shutdown is complete, at most CAP.TO.
    private func waitForShutdown() -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + capabilities.readyTimeout
        while registers.read(NVMeRegisters.status) & NVMeControl.shutdownStatusMask != NVMeControl.shutdownComplete {
            if clock.now >= deadline { return false }
            usleep(1000)
        }
        return true
    }
}
