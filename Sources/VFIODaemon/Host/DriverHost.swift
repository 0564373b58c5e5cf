import Dispatch
import Logging
import PCI
import Synchronization
import VFIODrivers
import VFIOHost
import VFIOKit
#if canImport(Glibc)
import Glibc
#endif

/// The daemon's core: takes the state directory's lock, finishes a killed daemon's restore,
/// binds, opens the devices context by context, attaches drivers, follows removals, answers
/// for status, and shuts everything down in order.
public final class DriverHost: Sendable {
    public let configuration: DaemonConfiguration
    /// True when the devices are the mock kernel's simulated ones.
    public let simulated: Bool
    private let system: any SystemCalls
    private let drivers: [any PCIDriver.Type]
    private let driverOverride: String?
    private let binding: HostBinding
    private let journal: BindingJournal
    private let logger: Logger
    private let loop: EventLoop
    private let started = ContinuousClock.now
    private let removals = DispatchQueue(label: "vfiokit.removals")

    private struct State {
        var lock: DaemonLock?
        var devices: [PCIAddress: HostedDevice] = [:]
        /// Devices this daemon bound itself, to give back at shutdown.
        var bound: [PCIAddress] = []
        var shutDown = false
    }
    private let state = Mutex(State())

    /// - Parameters:
    ///   - driverOverride: the driver for devices whose entry names none (`--driver`).
    ///   - drivers: the registry to match from.
    public init(
        configuration: DaemonConfiguration, system: any SystemCalls = HostSystemCalls.shared, simulated: Bool = false,
        driverOverride: String? = nil, drivers: [any PCIDriver.Type] = DriverRegistry.all, logger: Logger
    ) throws(DaemonError) {
        self.configuration = configuration
        self.system = system
        self.simulated = simulated
        self.drivers = drivers
        self.driverOverride = driverOverride
        self.logger = logger
        let tree = HostTree(root: "/", system: system)
        let enumerator: (any PCIDeviceEnumerator)? = system is HostSystemCalls ? nil : SysfsPCIEnumerator(tree: tree)
        binding = HostBinding(
            discovery: PCIDiscovery(tree: tree, enumerator: enumerator),
            store: BindingStateStore(directory: configuration.stateDirectory))
        journal = BindingJournal(stateDirectory: configuration.stateDirectory)
        for name in ([driverOverride] + configuration.devices.map(\.driver)).compactMap({ $0 })
        where !drivers.contains(where: { $0.name == name }) {
            throw .unknownDriver(name, known: drivers.map { $0.name }.joined(separator: ", "))
        }
        do { loop = try EventLoop(system: system) } catch { throw .setup("cannot create the event loop: \(error)") }
    }

    // MARK: Start

    /// Takes the lock, finishes a killed daemon's restore, binds if asked, and attaches every
    /// configured device. A configured device that is not there (yet) is attached when udev
    /// reports it added. Throws when another daemon runs, a device is held by another process
    /// or cannot be opened, or devices are there but none could be started.
    public func start() throws(DaemonError) {
        try makeStateDirectory()
        let lock = try DaemonLock(stateDirectory: configuration.stateDirectory)
        state.withLock { $0.lock = lock }
        let present = configuration.devices.filter { binding.discovery.exists($0.address) }
        for absent in configuration.devices where !present.contains(absent) {
            logger.warning("not present; attached when udev reports it added", metadata: ["device": "\(absent.address)"])
        }
        do throws(DaemonError) {
            try finishLeftoverRestore()
            do { try loop.start() } catch { throw DaemonError.setup("cannot start the event loop: \(error)") }
            if configuration.bind { try bind(present.map(\.address)) }
        } catch {
            shutdown()
            throw error
        }
        let plan = IOMMUContextPlan(present) { IOMMUContextPlan.group(of: $0, system: system) }
        var failure: DaemonError?
        for context in plan.contexts {
            for (entry, opened) in ContextOpener.open(context, backend: configuration.backend, system: system, logger: logger) {
                switch opened {
                case let .success(device): attach(device, entry: entry, context: context.name)
                case let .failure(error): failure = failure ?? openFailure(entry.address, error)
                }
            }
        }
        if let failure {
            shutdown()
            throw failure
        }
        let running = state.withLock { $0.devices.values.filter { $0.state == .running }.count }
        if running == 0 && !present.isEmpty {
            let reasons = status().devices.compactMap { d in d.detail.map { "\(d.address): \($0)" } }
            shutdown()
            throw .setup("no device could be started: \(reasons.joined(separator: "; "))")
        }
    }

    /// Attaches a device that udev reported added, if the configuration names it and it is
    /// not running; binds it first when the daemon binds.
    public func deviceAdded(_ address: PCIAddress) {
        guard let entry = configuration.device(address) else { return }
        let current = state.withLock { s in s.shutDown ? HostedDevice.State.stopped : s.devices[address]?.state }
        guard current != .running, current != .stopped else { return }
        logger.notice("device added; attaching", metadata: ["device": "\(address)"])
        do {
            if configuration.bind { try bind([address]) }
            let context = IOMMUContextPlan([entry]) { IOMMUContextPlan.group(of: $0, system: system) }.contexts[0]
            for (entry, opened) in ContextOpener.open(context, backend: configuration.backend, system: system, logger: logger) {
                switch opened {
                case let .success(device): attach(device, entry: entry, context: context.name)
                case let .failure(error): logger.error("cannot open the added device: \(openFailure(address, error))")
                }
            }
        } catch {
            logger.error("cannot attach the added device \(address): \(error)")
        }
    }

    // MARK: Removal

    /// Stops the device's driver and releases the device, off the caller's thread (REQ
    /// handlers run on the event loop), so the kernel's removal can complete. Other devices
    /// are untouched.
    public func removeDevice(_ address: PCIAddress, reason: String) {
        removals.async { [self] in
            guard let device = state.withLock({ $0.devices[address] }), device.state == .running else { return }
            logger.notice("\(reason): stopping the driver and releasing the device", metadata: ["device": "\(address)"])
            device.release(.removed(reason))
            logger.notice("released", metadata: ["device": "\(address)"])
        }
    }

    /// Waits until every removal asked for so far has been carried out.
    public func waitForRemovals() { removals.sync {} }

    // MARK: Shutdown

    /// Stops every driver; then masks and disables every interrupt; unmaps all DMA; resets the
    /// devices; closes them; gives back the original driver of each device this daemon bound.
    /// Each phase runs on every device before the next begins. Safe to call twice.
    public func shutdown() {
        guard let devices = state.withLock({ s -> [HostedDevice]? in
            guard !s.shutDown else { return nil }
            s.shutDown = true
            return s.devices.values.sorted { $0.address < $1.address }
        }) else { return }
        waitForRemovals()
        logger.info("shutting down \(devices.count) devices")
        let contexts = devices.reduce(into: [ObjectIdentifier: IOMMUContext]()) { $0[ObjectIdentifier($1.iommuContext)] = $1.iommuContext }.values
        for d in devices { d.stopDriver() }
        for d in devices { d.quiesce() }
        for c in contexts { HostedDevice.unmapDMA(of: c, logger: logger) }
        for d in devices { d.reset() }
        for d in devices {
            d.close()
            d.markStopped()
        }
        for c in contexts { c.close() }
        loop.stop()
        restoreBindings()
        state.withLock { $0.lock = nil }
        logger.info("shut down")
    }

    // MARK: Status

    public func status() -> StatusReport {
        let devices = state.withLock { $0.devices.values.sorted { $0.address < $1.address } }
        return StatusReport(
            pid: getpid(), simulated: simulated, uptimeSeconds: Double((ContinuousClock.now - started) / .milliseconds(1)) / 1000,
            devices: devices.map { $0.status() })
    }

    // MARK: Private

    private func attach(_ device: PCIDevice, entry: DaemonConfiguration.Device, context: String) {
        let chosen = entry.driver ?? driverOverride
        let driver: (any PCIDriver.Type)?
        if let chosen {
            driver = drivers.first { $0.name == chosen }
        } else {
            let identity = try? PCIDeviceIdentity(reading: device)
            driver = identity.flatMap { id in drivers.first { $0.supports(id) } }
        }
        let hosted = HostedDevice(
            device: device, driver: driver ?? NoMatchingDriver.self, context: context, loop: loop, logger: logger,
            workInterval: configuration.workInterval
        ) { [weak self] address in self?.removeDevice(address, reason: "the kernel requested the device back (VFIO REQ)") }
        state.withLock { $0.devices[device.address] = hosted }
    }

    /// The kernel refuses a second open in several ways (EBUSY for a group, EINVAL for a cdev
    /// bound elsewhere), so whoever else holds the device's files is looked for on any failure.
    private func openFailure(_ address: PCIAddress, _ error: VFIOError) -> DaemonError {
        let holders = DeviceHolders.of(address, system: system)
        return holders.isEmpty ? .setup("cannot open \(address): \(error)") : .deviceInUse(address, holders: holders)
    }

    private func makeStateDirectory() throws(DaemonError) {
        let dir = configuration.stateDirectory
        if mkdir(dir, 0o755) != 0 && errno != EEXIST {
            throw .setup("cannot create the state directory \(dir): \(String(cString: strerror(errno))); run as root or set VFIOKIT_STATE_DIR")
        }
    }

    /// Binds the devices not yet on the userspace driver, journalling them first so that a
    /// killed daemon's successor can give them back.
    private func bind(_ addresses: [PCIAddress]) throws(DaemonError) {
        let driver: DriverName = configuration.backend == .uio ? .uioPCIGeneric : .vfioPCI
        let needed = addresses.filter { (try? binding.discovery.device($0).driver) != driver }
        guard !needed.isEmpty else { return }
        let bound = state.withLock { s in
            s.bound += needed.filter { !s.bound.contains($0) }
            return s.bound
        }
        try journal.record(bound, pid: getpid())
        do {
            let (_, changes) = try binding.bind(BindRequest(addresses: needed, driver: driver))
            for change in changes { logger.notice("bound \(change.address): \(change.from?.rawValue ?? "no driver") → \(driver)") }
        } catch {
            throw .setup("cannot bind \(needed.map(\.description).joined(separator: ", ")): \(error)")
        }
    }

    /// Gives back the original driver of every device this daemon bound that is still there.
    private func restoreBindings() {
        let bound = state.withLock { s in defer { s.bound = [] }; return s.bound }
        let present = bound.filter { binding.discovery.exists($0) }
        if !present.isEmpty {
            do {
                let (_, changes) = try binding.unbind(UnbindRequest(addresses: present, restore: true))
                for change in changes { logger.notice("restored \(change.address) to \(change.to?.rawValue ?? "no driver")") }
            } catch {
                logger.error("cannot restore \(present.map(\.description).joined(separator: ", ")): \(error); run `vfiokit unbind --restore`")
                return
            }
        }
        try? journal.record([], pid: getpid())
    }

    /// A daemon killed before its shutdown leaves its journal: give its devices back now.
    private func finishLeftoverRestore() throws(DaemonError) {
        guard let (pid, devices) = try journal.leftover() else { return }
        let userspace: Set<DriverName> = [.vfioPCI, .uioPCIGeneric]
        let stillBound = devices.filter { (try? binding.discovery.device($0).driver).flatMap { $0 }.map(userspace.contains) ?? false }
        logger.notice("a previous daemon (pid \(pid)) stopped without restoring \(devices.count) devices; restoring them now")
        if !stillBound.isEmpty {
            do {
                let (_, changes) = try binding.unbind(UnbindRequest(addresses: stillBound, restore: true))
                for change in changes { logger.notice("recovered \(change.address): restored to \(change.to?.rawValue ?? "no driver")") }
            } catch {
                throw .setup("cannot finish the restore a killed daemon (pid \(pid)) left: \(error); run `vfiokit unbind --restore \(stillBound.map(\.description).joined(separator: " "))`")
            }
        }
        try journal.record([], pid: getpid())
    }

    /// Stands in for the driver of a device no match table takes, so that it is reported and
    /// released like a failed probe.
    private final class NoMatchingDriver: PCIDriver {
        static let name = "none"
        static let matches: [PCIMatch] = []

        init(device: PCIDevice, loop: EventLoop) throws {
            let ids = (try? PCIDeviceIdentity(reading: device)).map {
                "\(DriverHost.hex($0.vendor)):\(DriverHost.hex($0.device)), class \(String($0.classCode, radix: 16))"
            } ?? "IDs unreadable"
            throw DaemonError.setup("no driver matches \(device.address) (\(ids)): name one with --driver (\(DriverRegistry.names))")
        }

        func start() {}
        func stop() {}
    }

    fileprivate static func hex(_ v: UInt16) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 4 - s.count) + s
    }
}
