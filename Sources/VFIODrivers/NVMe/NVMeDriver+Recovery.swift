import VFIOKit

/// Resetting the controller in place: what a long-running host does without an operator when
/// the controller reports CSTS.CFS, stops answering an admin command, or will not abort a
/// timed-out one.
///
/// Recovery runs on the control thread. The I/O owners stop submitting (``NVMeSupervision/
/// recovering``; new requests wait in their backlogs), the controller is disabled (CC.EN
/// cleared, CSTS.RDY awaited), a fresh admin queue is set up and the controller enabled, the
/// same number of I/O queues is created again on the same memory and vectors, the features
/// the driver set are set again and the Asynchronous Event Requests re-armed. Then each owner
/// resubmits what was outstanding where that is safe (reads, writes, flushes and write zeroes:
/// repeating them gives the same result) and fails the rest with
/// ``NVMeError/interruptedByReset(command:)``; a command already resubmitted
/// ``Configuration/retries`` times fails with a timeout. Callers of the async API see a delay.
///
/// A controller that does not come back (RDY does not drop or rise within CAP.TO, CSTS reads
/// all ones, a queue cannot be created) or needs more than ``maxResetsPerMinute`` resets is
/// given up on: every request fails with a clear error until ``bringUp()`` runs again.
extension NVMeDriver {
    static let maxResetsPerMinute = 5

    /// Asks the control thread to reset the controller in place; from any thread. Owners stop
    /// submitting at once. Before bring-up has finished, and once given up, it does nothing;
    /// nor when `resetsSeen` (``resetCount`` before the trouble was seen) is stale: a reset has
    /// been done since, and what was seen may have been that reset's own doing.
    func requestRecovery(because reason: String, resetsSeen: Int? = nil) {
        guard supervision.ready.load(ordering: .acquiring), failureEpoch == 0, let reactor = supervision.reactor else { return }
        let first = supervision.recoveryReason.withLock { r in
            guard r == nil, resetsSeen.map({ $0 == supervision.resets.load(ordering: .acquiring) }) ?? true else { return false }
            r = reason
            return true
        }
        guard first else { return }
        supervision.recovering.store(true, ordering: .sequentiallyConsistent)
        reactor.wake()
        // The control thread may be asleep with the wake flag down: the tick picks it up too.
    }

    /// Why the controller needs a reset, from one CSTS read: CFS set; RDY clear, so the
    /// controller reset itself (the driver keeps it enabled while this is asked); or all ones
    /// for ``Configuration/removalGrace`` (the device stopped answering reads). Nil when it looks
    /// healthy, or reads all ones within the grace. For the owners' ticks.
    @inline(__always)
    func controllerTrouble() -> String? {
        let status = registers.read(NVMeRegisters.status)
        if removed(status) { return allOnesReason }
        if status == ~0 { return nil }
        if status & NVMeControl.fatalStatus != 0 { return "the controller reported a fatal status (CSTS.CFS)" }
        if status & NVMeControl.ready == 0 { return "CSTS.RDY dropped to 0 while the controller was enabled (CFS clear): it reset itself" }
        return nil
    }

    /// Resets in place the number of times this has happened since bring-up.
    public var resetCount: Int { supervision.resets.load(ordering: .relaxed) }

    /// Why the last reset in place was done; nil when none was.
    public var lastResetReason: String? { supervision.lastResetReason.withLock { $0 } }

    /// On the control thread: the reset, if one was requested.
    func recoverIfRequested() {
        guard let reason = supervision.recoveryReason.withLock({ $0 }) else { return }
        recover(because: reason)
        supervision.recoveryReason.withLock { $0 = nil }
    }

    private func recover(because reason: String) {
        guard failureEpoch == 0 else { return }
        // Every owner has seen `recovering`: none is submitting or aborting any more.
        for owner in owners { owner.reactor.run {} }
        let now = ContinuousClock.now
        let tooMany = supervision.resetTimes.withLock { times in
            times = times.filter { now - $0 < .seconds(60) } + [now]
            return times.count > Self.maxResetsPerMinute
        }
        if tooMany {
            giveUp("the controller needed more than \(Self.maxResetsPerMinute) resets within a minute (last: \(reason))")
            return
        }
        do {
            try reinitialise()
        } catch {
            let why = if case let .controllerFailed(inner) = error { inner } else { error.description }
            giveUp("it was reset because \(reason), and did not come back: \(why)")
            return
        }
        supervision.lastResetReason.withLock { $0 = reason }
        supervision.resets.wrappingAdd(1, ordering: .releasing)
        supervision.recovering.store(false, ordering: .sequentiallyConsistent)
        for owner in owners { owner.reactor.run { owner.resumeAfterReset() } }
        armAsyncEvents()
    }

    /// Disables and enables the controller and creates the admin and I/O queues again, under
    /// the admin lock (other admin commands wait for it).
    private func reinitialise() throws(NVMeError) {
        try admin.withLock { (a) throws(NVMeError) in
            a = nil
            try disable()
            let pair = try makeAdminQueue()
            a = pair
            try enable(admin: pair)
            let granted = try runAdmin(pair, .setNumberOfQueues(owners.count))
            guard min(Int(granted & 0xffff), Int(granted >> 16)) + 1 >= owners.count else {
                throw .unsupported("after the reset the controller grants fewer I/O queues than the \(owners.count) in use")
            }
            for owner in owners {
                owner.reactor.run { owner.pair.resetRings() }
                let q = owner.pair
                _ = try runAdmin(
                    pair,
                    .createCompletionQueue(
                        id: q.id, entries: q.entries, memory: q.completionQueue.deviceAddress, vector: configuration.polled ? nil : q.id))
                _ = try runAdmin(
                    pair,
                    .createSubmissionQueue(
                        id: q.id, entries: q.entries, memory: q.submissionQueue.deviceAddress, completionQueue: q.id))
            }
            try configureAsyncEvents(pair)
            try enableRetryDelays { (command, data) throws(NVMeError) in try runAdmin(pair, command, data: data) }
        }
    }

    private func giveUp(_ why: String) {
        resetController(because: why, failing: .controllerFailed(why))
    }
}
