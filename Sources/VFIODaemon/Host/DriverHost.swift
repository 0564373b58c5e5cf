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

/// The daemon's core in one process: takes the state directory's lock, finishes a killed
/// daemon's restore, binds, opens the devices context by context, attaches drivers, follows
/// removals, answers for status, and shuts everything down in order. A worker process of
/// ``WorkerSupervisor`` is one of these for one context, binding nothing.
public final class DriverHost: DaemonHost {
    public let configuration: DaemonConfiguration
    /// True when the devices are the mock kernel's simulated ones.
    public let simulated: Bool
    private let system: any SystemCalls
    private let drivers: [any PCIDriver.Type]
    private let driverOverride: String?
    private let bindings: HostBindings
    private let logger: Logger
    private let loop: EventLoop
    private let started = ContinuousClock.now
    private let removals = DispatchQueue(label: "vfiokit.removals")
    private let attaching: @Sendable (PCIAddress, String) -> Void

    private struct State {
        var devices: [PCIAddress: HostedDevice] = [:]
        var shutDown = false
    }
    private let state = Mutex(State())

    /// - Parameters:
    ///   - driverOverride: the driver for devices whose entry names none (`--driver`).
    ///   - drivers: the registry to match from.
    ///   - attaching: told each device's driver before the driver is probed (a worker process
    ///     tells its supervisor, which can then name the driver even if it traps at once).
    public init(
        configuration: DaemonConfiguration, system: any SystemCalls = HostSystemCalls.shared, simulated: Bool = false,
        driverOverride: String? = nil, drivers: [any PCIDriver.Type] = DriverRegistry.all, logger: Logger,
        attaching: @escaping @Sendable (_ device: PCIAddress, _ driver: String) -> Void = { _, _ in }
    ) throws(DaemonError) {
        self.attaching = attaching
        self.configuration = configuration
        self.system = system
        self.simulated = simulated
        self.drivers = drivers
        self.driverOverride = driverOverride
        self.logger = logger
        bindings = HostBindings(configuration: configuration, system: system, logger: logger)
        try configuration.checkDrivers(override: driverOverride, known: drivers)
        do { loop = try EventLoop(system: system) } catch { throw .framework(operation: "create the event loop", error) }
    }

    // MARK: Start

    /// Takes the lock, finishes a killed daemon's restore, binds if asked, and attaches every
    /// configured device. A configured device that is not there (yet) is attached when udev
    /// reports it added. Throws when another daemon runs, a device is held by another process
    /// or cannot be opened, or devices are there but none could be started.
    public func start() throws(DaemonError) {
        try bindings.acquire()
        let present = bindings.present()
        do throws(DaemonError) {
            do { try loop.start() } catch { throw DaemonError.framework(operation: "start the event loop", error) }
            if configuration.bind { try bindings.bind(present.map(\.address)) }
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
            if configuration.bind { try bindings.bind([address]) }
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
        guard
            let devices = state.withLock({ s -> [HostedDevice]? in
                guard !s.shutDown else { return nil }
                s.shutDown = true
                return s.devices.values.sorted { $0.address < $1.address }
            })
        else { return }
        waitForRemovals()
        logger.notice("shutting down \(devices.count) devices")
        let contexts = devices.reduce(into: [ObjectIdentifier: IOMMUContext]()) { $0[ObjectIdentifier($1.iommuContext)] = $1.iommuContext }
            .values
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
        bindings.release()
        let released = devices.isEmpty ? "no device" : devices.map(\.address.description).joined(separator: ", ")
        logger.notice("shut down; released \(released) (drivers stopped, interrupts disabled, DMA unmapped, devices reset and closed)")
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
        attaching(device.address, (driver ?? NoMatchingDriver.self).name)
        let hosted = HostedDevice(
            device: device, driver: driver ?? NoMatchingDriver.self, context: context, loop: loop, logger: logger,
            workInterval: configuration.workInterval, exports: entry.exports, stateDirectory: configuration.stateDirectory
        ) { [weak self] address in self?.removeDevice(address, reason: "the kernel requested the device back (VFIO REQ)") }
        state.withLock { $0.devices[device.address] = hosted }
    }

    /// The kernel refuses a second open in several ways (EBUSY for a group, EINVAL for a cdev
    /// bound elsewhere), so whoever else holds the device's files is looked for on any failure.
    private func openFailure(_ address: PCIAddress, _ error: VFIOError) -> DaemonError {
        let holders = DeviceHolders.of(address, system: system)
        return holders.isEmpty ? .setup("cannot open \(address): \(error)") : .deviceInUse(address, holders: holders)
    }

    /// Stands in for the driver of a device no match table takes, so that it is reported and
    /// released like a failed probe.
    private final class NoMatchingDriver: PCIDriver {
        static let name = "none"
        static let matches: [PCIMatch] = []

        init(device: PCIDevice, loop: EventLoop) throws {
            let ids =
                (try? PCIDeviceIdentity(reading: device)).map {
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
