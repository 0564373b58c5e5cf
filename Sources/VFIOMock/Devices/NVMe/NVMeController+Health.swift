/// The simulated controller's health, its asynchronous events and the I/O faults it injects.
extension NVMeController {
    // MARK: SMART / Health and events

    /// What the SMART / Health log page reports (the I/O counters aside).
    public var health: NVMeSimulatedHealth { withEngine { $0.health.values } }

    /// Changes what the SMART / Health log page reports; raises no event (see ``raiseCriticalWarning(_:)``).
    public func setHealth(_ change: (inout NVMeSimulatedHealth) -> Void) {
        withEngine { change(&$0.health.values) }
    }

    /// Sets critical warning `bits` (bit 0 spare below threshold, 1 temperature, 2 reliability
    /// degraded, 3 read only, 4 volatile memory backup failed) and raises a SMART / Health
    /// asynchronous event for each the host enabled (Set Features 0Bh).
    public func raiseCriticalWarning(_ bits: UInt8) {
        changeEngine { $0.warn(bits) }
    }

    /// Namespaces `ids` changed: they join the Changed Namespace List and, when the host
    /// enabled namespace attribute notices, a Namespace Attribute Changed event is raised.
    public func changeNamespaceAttributes(_ ids: [UInt32]) {
        changeEngine { $0.namespacesChanged(ids) }
    }

    /// Raises any asynchronous event: `type` (0 error, 1 SMART / health, 2 notice, …),
    /// `information` and the log page that clears it.
    public func raiseAsyncEvent(type: UInt8, information: UInt8, logPage: UInt8) {
        changeEngine { $0.raiseEvent(type: type, information: information, logPage: logPage) }
    }

    /// Asynchronous Event Requests the controller holds.
    public var outstandingAsyncEventRequests: Int { withEngine { $0.health.eventRequests.count } }

    /// Error Information log entries recorded over the controller's life.
    public var errorCount: UInt64 { withEngine { $0.health.errorCount } }

    // MARK: I/O faults

    /// The next `count` I/O commands (with `opcode`, any when nil) complete with status code
    /// type `codeType` and code `code`, Do Not Retry as given, without being executed. With
    /// `retryDelay` 1–3 the status carries that Command Retry Delay (CRD) when the host enabled
    /// Advanced Command Retry. A media and data integrity status (type 2) counts as a media
    /// error in the SMART log.
    public func failCommands(
        _ count: Int = 1, codeType: UInt8, code: UInt8, doNotRetry: Bool, retryDelay: UInt8 = 0, opcode: UInt8? = nil
    ) {
        withEngine { $0.health.failures = (count, UInt16(codeType & 7) << 8 | UInt16(code), doNotRetry, retryDelay, opcode) }
    }

    /// A retryable failure: the next `count` I/O commands complete with Namespace Not Ready
    /// (SCT 0, SC 82h), DNR clear, as a controller says while it cannot serve them yet; with
    /// `retryDelay` 1–3, CRD asks the host to wait CRDT1–3 before retrying (once ACRE is on).
    public func injectRetryableError(_ count: Int = 1, opcode: UInt8? = nil, retryDelay: UInt8 = 0) {
        failCommands(count, codeType: 0, code: 0x82, doNotRetry: false, retryDelay: retryDelay, opcode: opcode)
    }

    /// Whether the host enabled Advanced Command Retry (Host Behavior Support, feature 16h)
    /// since the controller was last enabled.
    public var advancedCommandRetryEnabled: Bool { withEngine { $0.health.advancedCommandRetry } }

    /// A media error: the next `count` I/O commands complete with Unrecovered Read Error
    /// (SCT 2, SC 81h), DNR set.
    public func injectMediaError(_ count: Int = 1, opcode: UInt8? = nil) {
        failCommands(count, codeType: 2, code: 0x81, doNotRetry: true, opcode: opcode)
    }

    /// Fatal mid-I/O: the controller runs `commands` more I/O commands, then sets CSTS.CFS on
    /// fetching the next one, which it never completes. A reset clears it, unless `permanent`,
    /// when the controller never becomes ready again (``injectPermanentFailure()``).
    public func injectFatalStatus(afterIOCommands commands: Int, permanent: Bool = false) {
        withEngine { e in
            e.health.fatalAfter = max(0, commands)
            e.health.permanent = permanent
        }
    }

    /// Sets CSTS.CFS for good: a reset clears RDY but the controller never becomes ready again.
    public func injectPermanentFailure() {
        withEngine { e in
            e.health.permanent = true
            e.setFatal()
        }
    }

    /// Surprise removal: every register reads all ones from now on and the controller does
    /// nothing more, as when the device drops off the bus.
    public func injectSurpriseRemoval() {
        withEngine { e in
            e.health.removed = true
            e.registers?.initializeMemory(as: UInt8.self, repeating: 0xff, count: NVMeEngine.Offset.doorbells)
        }
    }

    /// The controller resets itself, as after a link or NVM subsystem reset: for `unreachable`
    /// its registers read all ones and it does nothing; then they are at their power-on values
    /// (CC.EN and CSTS.RDY 0, CFS clear, no queues: outstanding commands are lost). Once the host
    /// enables it again, RDY rises no sooner than `lasting` after the reset began.
    public func injectReset(lasting: Duration, unreachable: Duration = .zero) {
        withEngine { e in
            let now = ContinuousClock.now
            e.health.readyNotBefore = now + lasting
            guard unreachable > .zero else {
                e.powerOn()
                return
            }
            e.health.removed = true
            e.health.unreachableUntil = now + unreachable
            e.registers?.initializeMemory(as: UInt8.self, repeating: 0xff, count: NVMeEngine.Offset.doorbells)
        }
    }

    /// Runs `change` on the engine and signals the vectors of completions it posted.
    private func changeEngine(_ change: (inout NVMeEngine) -> Void) {
        let vectors: [Int] = withEngine { e in
            change(&e)
            return e.takeDueInterrupts()
        }
        signal(vectors)
    }
}

extension NVMeEngine {
    /// The MSI-X vectors of CQs with completions posted since the last call.
    mutating func takeDueInterrupts() -> [Int] {
        var vectors: [Int] = []
        for q in completionQueues.indices where completionQueues[q]?.interruptDue == true {
            completionQueues[q]!.interruptDue = false
            vectors.append(completionQueues[q]!.vector)
        }
        return vectors
    }
}
