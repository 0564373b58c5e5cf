import Synchronization
import VFIOKit

/// The driver's control thread and what it shares: asynchronous events coming in on the admin
/// queue, and requests to reset the controller in place.
///
/// The thread (a ``QueueReactor`` named `nvme-admin`) owns no data path: it reaps the admin
/// CQ for Asynchronous Event Request completions (on the admin queue's MSI-X vector, and on
/// its tick), reads the log page each event names, re-arms the request and runs recovery. I/O
/// owners never wait for it: they set ``recovering`` and hold new work in their backlogs.
final class NVMeSupervision: @unchecked Sendable {
    struct Events {
        /// Completed Asynchronous Event Requests (DW0) still to handle.
        var pending: [UInt32] = []
        /// Asynchronous Event Requests outstanding on the admin queue, and how many to keep.
        var outstanding = 0
        var limit = 0
        /// Entries the controller keeps in its Error Information log (ELPE + 1).
        var errorLogEntries = 1
        /// The features to set again after a reset: Asynchronous Event Configuration (CDW11).
        var configuration: UInt32?
        /// The most recent events, oldest first (at most ``recentLimit``).
        var recent: [NVMeHealthEvent] = []
        /// The namespaces the last Namespace Attribute Changed event named.
        var changedNamespaces: NVMeChangedNamespaceList?
        var handler: (@Sendable (NVMeHealthEvent) -> Void)?
        /// The SMART log last read, when, and who hears of new critical warnings.
        var smart: NVMeSMARTLog?
        var smartReadAt: ContinuousClock.Instant?
        var warningHandler: (@Sendable (DeviceHealth, String) -> Void)?
    }

    static let recentLimit = 32

    let events = Mutex(Events())
    /// True from a reset request until the controller is re-initialised (or given up on): owners
    /// submit nothing meanwhile.
    let recovering = Atomic<Bool>(false)
    /// Why the pending reset was requested; nil when none is.
    let recoveryReason = Mutex<String?>(nil)
    /// Resets done in place since bring-up, and why the last one was done.
    let resets = Atomic<Int>(0)
    let lastResetReason = Mutex<String?>(nil)
    /// When the recent resets happened: too many too close together and the driver gives up.
    let resetTimes = Mutex<[ContinuousClock.Instant]>([])
    /// CRDT1–3 in nanoseconds while Advanced Command Retry is enabled (else zeroes): the owners
    /// copy them into their mailboxes, at creation and after each reset.
    let retryDelays = Mutex<(UInt64, UInt64, UInt64)>((0, 0, 0))
    /// CLOCK_MONOTONIC_COARSE nanoseconds of the first of the CSTS reads that have read all
    /// ones since; 0 while CSTS reads otherwise.
    let allOnesSince = Atomic<UInt64>(0)
    /// Set once bring-up has finished: before that a failure fails the bring-up instead.
    let ready = Atomic<Bool>(false)
    var reactor: QueueReactor?
    /// The admin queue's interrupt watch, on an interrupt-driven controller.
    var adminInterrupt: (id: Int, source: InterruptSource)?
    let counter = UnsafeMutableRawBufferPointer.allocate(byteCount: 8, alignment: 8)

    deinit { counter.deallocate() }

    /// Back to the state before bring-up.
    func clear() {
        events.withLock { e in
            let (handler, warningHandler) = (e.handler, e.warningHandler)
            e = Events()
            e.handler = handler
            e.warningHandler = warningHandler
        }
        recovering.store(false, ordering: .releasing)
        recoveryReason.withLock { $0 = nil }
        resets.store(0, ordering: .relaxed)
        lastResetReason.withLock { $0 = nil }
        resetTimes.withLock { $0 = [] }
        ready.store(false, ordering: .releasing)
        allOnesSince.store(0, ordering: .relaxed)
    }
}
