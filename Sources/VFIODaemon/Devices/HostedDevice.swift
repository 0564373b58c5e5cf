import Dispatch
import Logging
import PCI
import Synchronization
import VFIODrivers
import VFIOKit

/// One device the daemon hosts: its driver, its exports (an NVMe device's namespaces served
/// over NBD or ublk), the work loop that exercises it, its REQ (removal request) interrupt, and its release in the order the daemon's shutdown takes.
///
/// The release is split into phases (``stopDriver()``, ``quiesce()``, ``unmapDMA(of:logger:)`` on the context,
/// ``reset()``, ``close()``) so that at shutdown the daemon can run each phase on every device
/// before the next; a single removal runs them all at once with ``release(_:)``. Every phase
/// is safe to repeat and safe after a failed start.
final class HostedDevice: Sendable {
    enum State: Sendable, Equatable {
        case running
        /// The driver threw in probe or start; the device was released.
        case failed(String)
        /// The kernel asked for the device back (REQ) or udev reported it gone; it was released.
        case removed(String)
        /// Released at shutdown.
        case stopped
    }

    let address: PCIAddress
    let driverName: String
    let context: String
    let backend: Backend
    private let device: PCIDevice
    private let loop: EventLoop
    private let logger: Logger

    private struct Mutable {
        var state: State = .running
        var driver: (any PCIDriver)?
        var finalActivity = DriverActivity()
        var lastWorkError: String?
        var iommuFaults = 0
        var closed = false
        /// The kernel log reader for this device's IOMMU faults; nil without an IOMMU or
        /// permission, and once closed.
        var faultLog: IOMMUFaultLog?
        var faultsReadable = false
        /// The running export servers, and their figures as they stood when stopped.
        var exports: DeviceExports?
        var finalExports: [ExportStatus]?
    }
    private let mutable = Mutex(Mutable())
    /// The REQ handler's registration; ended by quiesce.
    private let removalRegistration = Mutex<EventLoop.Registration?>(nil)
    private let stopWork = DispatchSemaphore(value: 0)
    private let workFinished = DispatchSemaphore(value: 0)
    private let working = Atomic<Bool>(false)
    /// The work loop's queue; a `sync` on it returns once the loop's block has been released.
    private let workQueue = DispatchQueue(label: "vfiokit.work")

    /// Probes and starts `driver` on the opened `device`, arms REQ and, for a driver that can
    /// exercise its device, starts the work loop. With `exports` the driver must be ``NVMeDriver``
    /// (brought up with the queues they need) and they start once it is up. A probe, start or
    /// export that throws leaves the device released and the state ``State/failed(_:)``; nothing
    /// is thrown.
    init(
        device: PCIDevice, driver: any PCIDriver.Type, context: String, loop: EventLoop, logger: Logger,
        workInterval: Duration, exports: [ExportSpecification] = [], stateDirectory: String = "",
        onRemovalRequest: @escaping @Sendable (PCIAddress) -> Void
    ) {
        address = device.address
        driverName = driver.name
        self.context = context
        backend = device.backend
        self.device = device
        self.loop = loop
        var logger = logger
        logger[metadataKey: "device"] = "\(device.address)"
        logger[metadataKey: "driver"] = "\(driver.name)"
        self.logger = logger
        let faultLog = device.backend.translatesDMA ? try? device.openFaultLog() : nil
        mutable.withLock {
            $0.faultLog = faultLog
            $0.faultsReadable = faultLog != nil
        }

        let instance: any PCIDriver
        do {
            if exports.isEmpty {
                instance = try driver.init(device: device, loop: loop)
            } else {
                guard driver == NVMeDriver.self else {
                    fail("exports serve NVMe namespaces: give this device the \(NVMeDriver.name) driver, not \(driver.name)")
                    return
                }
                instance = try NVMeDriver(device: device, loop: loop, configuration: DeviceExports.driverConfiguration(for: exports))
            }
        } catch {
            fail("probe failed: \(Self.describe(error))")
            return
        }
        do {
            try instance.start()
        } catch {
            instance.stop()
            fail("start failed: \(Self.describe(error))")
            return
        }
        if let nvme = instance as? NVMeDriver, !exports.isEmpty {
            do {
                let started = try DeviceExports(
                    exports, driver: nvme, address: address, stateDirectory: stateDirectory, logger: self.logger)
                mutable.withLock { $0.exports = started }
            } catch {
                instance.stop()
                fail("\(error)")
                return
            }
        }
        mutable.withLock { $0.driver = instance }
        if let reporting = instance as? any HealthReportingDriver { Self.logCriticalWarnings(of: reporting, logger: logger) }
        armRemovalRequest(onRemovalRequest)
        logger.notice("started", metadata: ["backend": "\(device.backend)", "context": "\(context)"])
        let trap = FaultInjection.trapsOnInterrupt(address)
        if let exercisable = instance as? any ExercisableDriver {
            if trap { logger.warning("\(FaultInjection.variable) names this device: it traps on its first interrupt") }
            startWork(exercisable, interval: workInterval, trapOnInterrupt: trap)
        } else if trap {
            logger.warning("\(FaultInjection.variable) names this device, but the daemon does not exercise its driver: no trap")
        }
    }

    var state: State { mutable.withLock { $0.state } }

    /// Interrupts, operations and errors: live while running, as they stood when it stopped after.
    var activity: DriverActivity { mutable.withLock { $0.driver?.activity ?? $0.finalActivity } }

    // MARK: Release, phase by phase

    /// Stops the exports (clients get their in-flight replies, then an orderly disconnect), the
    /// work loop (waiting for the unit in flight, which is bounded) and the driver.
    func stopDriver() {
        if let exports = mutable.withLock({ m in
            defer { m.exports = nil }; return m.exports
        }) {
            exports.stop(logger: logger)
            let final = exports.status
            mutable.withLock { $0.finalExports = final }
        }
        if working.exchange(false, ordering: .acquiringAndReleasing) {
            stopWork.signal()
            workFinished.wait()
            workQueue.sync {}  // the loop's block, and the driver it holds, are let go
        }
        guard
            let driver = mutable.withLock({ m in
                defer { m.driver = nil }; return m.driver
            })
        else { return }
        driver.stop()
        let final = driver.activity
        mutable.withLock { $0.finalActivity = final }
        if let queues = final.queues {
            // The counts once no work is in flight, for a soak to judge: completed = submitted.
            let submitted: UInt64 = queues.reduce(0) { $0 + $1.submitted }
            let completed: UInt64 = queues.reduce(0) { $0 + $1.completed }
            let timeouts: UInt64 = queues.reduce(0) { $0 + $1.timeouts }
            logger.notice("stopped", metadata: ["submitted": "\(submitted)", "completed": "\(completed)", "timeouts": "\(timeouts)"])
        }
    }

    /// Turns bus mastering off, masks INTx and disables every interrupt index, REQ included.
    func quiesce() {
        removalRegistration.withLock { $0 = nil }  // ends it
        guard isOpen else { return }
        try? device.setBusMaster(false)
        for index in [IRQIndex.intx, .msi, .msix, .err, .req] where !device.interrupts.sources(index).isEmpty {
            if index == .intx { try? device.interrupts.mask(.intx) }
            try? device.interrupts.disable(index)
        }
    }

    /// The IOMMU context the device shares with the others of its group or configured context.
    var iommuContext: IOMMUContext { device.context }

    /// Unmaps every DMA mapping still live in `context` (a driver should have freed its own).
    static func unmapDMA(of context: IOMMUContext, logger: Logger) {
        let left = context.dma.mappingCount
        if left > 0 { logger.notice("unmapping \(left) DMA mappings the drivers left") }
        context.dma.unmapAll()
    }

    /// Resets the device where the kernel can.
    func reset() {
        guard isOpen, device.canReset else { return }
        do { try device.reset() } catch { logger.warning("reset failed: \(error)") }
    }

    /// Closes every file; afterwards the kernel may hand the device to another driver.
    func close() {
        guard
            mutable.withLock({ m in
                defer {
                    m.closed = true
                    m.faultLog = nil
                }
                return !m.closed
            })
        else { return }
        device.close()
    }

    /// Runs every phase and records why. The context's DMA is unmapped, and the context closed,
    /// only when no other device is open in it: the others' drivers are still running.
    func release(_ state: State) {
        stopDriver()
        quiesce()
        let context = device.context
        let alone = context.devices.allSatisfy { $0 === device }
        if alone { Self.unmapDMA(of: context, logger: logger) }
        reset()
        close()
        if alone { context.close() }
        mutable.withLock { m in if m.state == .running { m.state = state } }
    }

    /// Records a release at shutdown.
    func markStopped() { mutable.withLock { m in if m.state == .running { m.state = .stopped } } }

    // MARK: Status

    /// A snapshot for `vfiokit status`; reads new IOMMU faults from the kernel log first.
    func status() -> DeviceStatus {
        let faults = mutable.withLock { $0.faultLog }?.newFaults().count ?? 0
        let open = isOpen
        let dma = open ? DeviceStatus.DMA(mappings: device.dma.mappingCount, bytes: device.dma.mappedBytes) : .init(mappings: 0, bytes: 0)
        let activity = self.activity
        let health = mutable.withLock { ($0.driver as? any HealthReportingDriver)?.health }
        let exports = mutable.withLock { $0.exports }?.status
        return mutable.withLock { m in
            m.iommuFaults += faults
            return DeviceStatus(
                address: address.description, driver: driverName, backend: backend.description, context: context,
                state: m.state.name, detail: m.state.detail, interrupts: activity.interrupts, operations: activity.operations,
                errors: activity.errors, queues: activity.queues, lastError: m.lastWorkError, dma: dma,
                iommuFaults: m.faultsReadable ? m.iommuFaults : nil, health: health, exports: exports ?? m.finalExports)
        }
    }

    // MARK: Private

    private var isOpen: Bool { mutable.withLock { !$0.closed } }

    private func fail(_ reason: String) {
        logger.error("\(reason); releasing the device")
        mutable.withLock { $0.state = .failed(reason) }
        release(.failed(reason))
    }

    /// VFIO signals REQ when the host wants the device back (its removal, an unbind); UIO has none.
    private func armRemovalRequest(_ onRequest: @escaping @Sendable (PCIAddress) -> Void) {
        guard backend != .uio else { return }
        do {
            guard let source = try device.interrupts.enable(.req).first else { return }
            let address = self.address
            try removalRegistration.withLock { (r) throws(VFIOError) in
                r = try loop.register(source) { _ in onRequest(address) }
            }
        } catch {
            logger.warning("no REQ interrupt, so a removal request waits for udev: \(error)")
        }
    }

    private func startWork(_ driver: any ExercisableDriver, interval: Duration, trapOnInterrupt: Bool) {
        working.store(true, ordering: .releasing)
        let milliseconds = Int(interval / .milliseconds(1))
        workQueue.async { [self] in
            defer { workFinished.signal() }
            while working.load(ordering: .acquiring) {
                do {
                    try driver.exercise()
                    mutable.withLock { $0.lastWorkError = nil }
                    if trapOnInterrupt { FaultInjection.trapIfInterrupted(driver.activity, address: address, driver: driverName) }
                } catch {
                    let message = Self.describe(error)
                    let changed = mutable.withLock { m in
                        defer { m.lastWorkError = message }
                        return m.lastWorkError != message
                    }
                    if changed { logger.warning("work failed: \(message)") }
                }
                if stopWork.wait(timeout: .now() + .milliseconds(milliseconds)) == .success { break }
            }
        }
    }

    private static func describe(_ error: any Error) -> String { String(describing: error) }
}

extension HostedDevice.State {
    var name: String {
        switch self {
        case .running: "running"
        case .failed: "failed"
        case .removed: "removed"
        case .stopped: "stopped"
        }
    }

    var detail: String? {
        switch self {
        case .running, .stopped: nil
        case let .failed(why), let .removed(why): why
        }
    }
}
