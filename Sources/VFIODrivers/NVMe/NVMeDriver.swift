#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import VFIOKit

/// A userspace NVMe driver on VFIOKit's public API: it runs unchanged on the mock's simulated
/// controller and on real (or QEMU's) NVMe under vfio-pci.
///
/// ``bringUp()`` resets and enables the controller (waiting at most CAP.TO), creates the admin
/// queue, identifies the controller and its active namespaces and creates
/// ``Configuration/queues`` I/O queue pairs, each owned by its own thread (an
/// ``NVMeQueueOwner``), completing on its own MSI-X vector watched by that thread or, with
/// ``Configuration/polled``, polled by it while commands are outstanding. I/O goes through the
/// `async` block API (``read(namespace:lba:blocks:into:offset:)``,
/// ``write(namespace:lba:blocks:from:offset:)``, ``flush(namespace:)``), which hands each
/// request to the owner through a lock-free mailbox once the task has suspended, or runs on the
/// owner thread itself: ``withQueuePair(_:_:)`` and ``queueOwner(_:)``.
///
/// Every wait is bounded. An I/O command outstanding longer than
/// ``Configuration/commandTimeout`` is aborted (its owner checks on a timerfd, which also reads
/// CSTS every 10 ms). A command failing with a status that allows it (DNR clear) is retried up
/// to ``Configuration/retries`` times with back-off. When an abort fails, an admin command times
/// out, CSTS shows a fatal status or RDY dropped (the controller reset itself), or CSTS reads all
/// ones for longer than ``Configuration/removalGrace``, the controller is reset and re-initialised in
/// place and what was outstanding is resubmitted where that is safe (`NVMeDriver+Recovery`); a
/// controller that does not come back is given up on, and every outstanding and later command
/// fails with a clear error until the driver is brought up again. Asynchronous events and log
/// pages are handled on a control thread (`NVMeDriver+Events`). ``shutDown()`` deletes the
/// queues, sets CC.SHN and waits for CSTS.SHST to report the shutdown complete.
///
/// Start and stop are not concurrent with I/O; I/O calls are thread-safe. ``shutDown()`` must
/// run before the driver goes (deinit only asserts it did: it does no blocking work).
public final class NVMeDriver: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// I/O queue pairs to create (capped by what the controller grants).
        public var queues = 1
        /// Entries per I/O queue (capped by CAP.MQES); a queue holds entries − 1 commands.
        public var queueDepth = 256
        /// Poll completion queues instead of taking MSI-X interrupts.
        public var polled = false
        /// How long an I/O or admin command may take before the driver gives up on it.
        public var commandTimeout: Duration = .seconds(5)
        public var adminQueueDepth = 32
        /// How many times a command failing with a retryable status (DNR clear) is submitted
        /// again, and how many resets in place an outstanding command lives through.
        public var retries = 3
        /// The wait before the first retry, doubled for each later one (on the owner's tick).
        public var retryBackoff: Duration = .milliseconds(10)
        /// Asynchronous Event Requests kept outstanding (capped by the controller's AERL + 1).
        public var asyncEventRequests = 4
        /// How long CSTS may read all ones (as it does briefly while a device resets or its link
        /// retrains) before the device is taken as removed and given up on.
        public var removalGrace: Duration = .seconds(2)
        /// How often the control thread reads the SMART / Health log for ``health`` (events
        /// read it at once).
        public var healthInterval: Duration = .seconds(60)

        public init() {}
    }

    public let device: PCIDevice
    let loop: EventLoop
    public let configuration: Configuration
    let registers: MMIO<NVMeRegisters>
    let bar: Region
    public let capabilities: NVMeCapabilities

    /// Set by ``bringUp()``.
    public internal(set) var controller: NVMeControllerIdentity?
    /// The active namespaces, as last identified (by ``bringUp()`` or ``rescanNamespaces()``).
    public var namespaces: [NVMeNamespaceIdentity] { namespaceTable.withLock { $0 } }
    /// Read once per async request, written by a rescan: behind a mutex.
    let namespaceTable = Mutex<[NVMeNamespaceIdentity]>([])
    /// The most one command transfers, in bytes: MDTS (4 MiB when MDTS sets no limit; 32 MiB at most).
    public internal(set) var maxTransfer = NVMeQueuePair.pageSize
    /// The NVM command set's Write Zeroes and Dataset Management limits (Identify CNS 06h), as
    /// read by ``bringUp()``: the block calls split or refuse what goes past them.
    public internal(set) var limits = NVMeNVMLimits()
    /// The I/O queue pairs' owners: set by ``bringUp()`` and ``shutDown()`` only, which are
    /// not concurrent with I/O, so I/O reads it without a lock.
    var owners: [NVMeQueueOwner] = []
    /// The admin queue: a control path, behind a mutex.
    let admin = Mutex<NVMeQueuePair?>(nil)
    /// Why the controller was given up on, once it was.
    let failure = Mutex<(reason: String, error: NVMeError)?>(nil)
    /// 0 while the controller is usable; bumped each time it is given up on, so owners notice.
    let failedEpoch = Atomic<Int>(0)
    let nextQueue = Atomic<Int>(0)
    var msixEnabled = false
    /// True from the start of ``bringUp()`` until ``shutDown()``: what there is to undo.
    let active = Atomic<Bool>(false)
    /// Asynchronous events and resets in place: the control thread's state.
    let supervision = NVMeSupervision()

    /// Probes `device`: class 0x010802 (NVM Express), a BAR 0 holding the registers, and a
    /// controller that supports the NVM command set with 4 KiB pages. Leaves it untouched.
    public init(device: PCIDevice, loop: EventLoop, configuration: Configuration) throws(NVMeError) {
        self.device = device
        self.loop = loop
        self.configuration = configuration
        let (bar, registers) = try framework { () throws(VFIOError) in
            let bar = try device.bar(0)
            return (bar, try bar.mmio(NVMeRegisters.self))
        }
        self.bar = bar
        self.registers = registers
        capabilities = NVMeCapabilities(registers.read(NVMeRegisters.capabilities))
        guard capabilities.raw != ~0 else { throw .unsupported("CAP reads all ones: the device is not responding") }
        guard capabilities.supportsNVMCommandSet else { throw .unsupported("CAP.CSS lacks the NVM command set") }
        guard capabilities.minPageSize <= 4096, capabilities.maxPageSize >= 4096 else {
            throw .unsupported("4 KiB pages are outside CAP.MPSMIN…MPSMAX (\(capabilities.minPageSize)…\(capabilities.maxPageSize))")
        }
    }

    deinit { assert(!active.load(ordering: .relaxed), "an NVMeDriver was released without shutDown()") }

    var timeoutMilliseconds: Int { Int(configuration.commandTimeout / .milliseconds(1)) }

    // MARK: Controller state

    /// Clears CC.EN and waits for CSTS.RDY to drop, within CAP.TO.
    func disable() throws(NVMeError) {
        let cc = registers.read(NVMeRegisters.configuration)
        if cc & NVMeControl.enable != 0 { registers.write(NVMeRegisters.configuration, cc & ~NVMeControl.enable) }
        try waitForReady(false)
    }

    /// Waits for CSTS.RDY to equal `ready`, at most CAP.TO (taken as at least 500 ms, since
    /// some controllers report 0, and at most ``maxReadyWait``); a fatal status ends the wait,
    /// and so does CSTS reading all ones for ``Configuration/removalGrace``.
    func waitForReady(_ ready: Bool) throws(NVMeError) {
        let limit = min(max(capabilities.readyTimeout, .milliseconds(500)), Self.maxReadyWait)
        let ms = Int(limit / .milliseconds(1))
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        while true {
            let status = registers.read(NVMeRegisters.status)
            if removed(status) { throw .controllerFailed(allOnesReason) }
            if status != ~0 {
                if (status & NVMeControl.ready != 0) == ready { return }
                if ready, status & NVMeControl.fatalStatus != 0 { throw .controllerFatal(step: "enable") }
            }
            if clock.now >= deadline {
                if status == ~0 { throw .controllerFailed(allOnesReason) }
                throw .notReady(expected: ready, milliseconds: ms)
            }
            usleep(1000)
        }
    }

    /// The longest wait for RDY to change, whatever CAP.TO says (it allows 127.5 s).
    static let maxReadyWait: Duration = .seconds(60)

    /// Notes a CSTS read: true once CSTS has read all ones for ``Configuration/removalGrace``
    /// (from any thread: the first all-ones read starts the grace, any other read ends it).
    func removed(_ status: UInt32) -> Bool {
        guard status == ~0 else {
            if supervision.allOnesSince.load(ordering: .relaxed) != 0 { supervision.allOnesSince.store(0, ordering: .relaxed) }
            return false
        }
        let now = NVMeQueuePair.coarseNow()
        let (first, seen) = supervision.allOnesSince.compareExchange(expected: 0, desired: now, ordering: .relaxed)
        let grace = UInt64(max(.zero, configuration.removalGrace) / .nanoseconds(1))
        return !first && now &- seen >= grace
    }

    var allOnesReason: String {
        "CSTS reads all ones (for \(configuration.removalGrace)): the device stopped responding"
    }

    /// Gives the controller up: CC.EN is cleared, every outstanding command fails with
    /// `error` (each owner fails its own, woken here), and later ones fail with
    /// ``NVMeError/controllerFailed(_:)``.
    func resetController(because reason: String, failing error: NVMeError) {
        failure.withLock { if $0 == nil { $0 = (reason, error) } }
        failedEpoch.wrappingAdd(1, ordering: .releasing)
        supervision.recovering.store(false, ordering: .releasing)
        // A controller that does not drop RDY is given up on all the same: nothing is sent to it.
        try? disable()
        for owner in owners { owner.reactor.run {} }
    }

    /// Nonzero once the controller was given up on (``failure`` says why).
    var failureEpoch: Int { failedEpoch.load(ordering: .acquiring) }
    /// What commands outstanding when the controller was given up on fail with.
    var outstandingError: NVMeError? { failure.withLock { $0?.error } }
    /// What later commands fail with.
    var laterError: NVMeError? { failure.withLock { f in f.map { .controllerFailed($0.reason) } } }

    @inline(__always)
    func checkUsable() throws(NVMeError) {
        if failureEpoch != 0, let error = laterError { throw error }
    }

    /// Whether the controller reports CSTS.CFS.
    public var hasFatalStatus: Bool { registers.read(NVMeRegisters.status) & NVMeControl.fatalStatus != 0 }
}

extension NVMeDriver: PCIDriver {
    public static let name = "nvme"
    /// Any NVM Express controller: class 01 (storage), 08 (non-volatile memory), 02 (NVMe).
    public static let matches = [PCIMatch(classCode: 0x010802)]

    /// Probes with the default ``Configuration``; throws ``NVMeError``.
    public convenience init(device: PCIDevice, loop: EventLoop) throws {
        try self.init(device: device, loop: loop, configuration: Configuration())
    }

    /// ``bringUp()``; throws ``NVMeError``.
    public func start() throws { try bringUp() }

    public func stop() { shutDown() }
}
