import Dispatch
import FoundationEssentials
import Logging
import PCI
import Synchronization
import SystemPackage
import VFIODrivers
import VFIOKit
#if canImport(Glibc)
import Glibc
#endif

/// The daemon with process isolation (`vfiokit run --isolate`): each IOMMU context of the plan
/// runs in a worker process of its own, so that a driver that traps takes down only its
/// context's devices, which the kernel releases as the worker dies.
///
/// The supervisor keeps what is host-wide: the state directory's lock, the bindings and their
/// journal, udev's events (an added device gets a worker; a removal is passed to the worker
/// hosting it, which has usually honoured VFIO's REQ already), and the status socket, which
/// merges every worker's devices. A worker that dies is logged and its devices show as failed
/// with the reason; it is not restarted (a driver that trapped would likely trap again, and
/// its device stays bound for a person to look at); a udev add of its device starts a new one.
/// Shutdown sends SIGTERM to every worker, which stops its devices in the daemon's order,
/// waits for them all, then gives back the bindings. Workers end with the supervisor
/// (`PR_SET_PDEATHSIG`), however it ends.
public final class WorkerSupervisor: DaemonHost {
    /// How to start a worker: normally this executable's hidden `worker` subcommand.
    public struct WorkerCommand: Sendable {
        public var executable: String
        /// The arguments (after argv[0]) for the worker whose directory is given.
        public var arguments: @Sendable (_ directory: String) -> [String]

        public init(executable: String, arguments: @escaping @Sendable (_ directory: String) -> [String]) {
            self.executable = executable
            self.arguments = arguments
        }
    }

    public let configuration: DaemonConfiguration
    public let simulated: Bool
    private let system: any SystemCalls
    private let command: WorkerCommand
    private let bindings: HostBindings
    private let children: ChildProcesses
    private let logger: Logger
    private let started = ContinuousClock.now
    /// How long a worker may take to start its devices before it is killed and reported.
    private let startTimeout: Duration

    private struct State {
        var workers: [WorkerProcess] = []
        var spawned = 0
        var shutDown = false
    }
    private let state = Mutex(State())

    public init(
        configuration: DaemonConfiguration, system: any SystemCalls = HostSystemCalls.shared, simulated: Bool = false,
        driverOverride: String? = nil, worker: WorkerCommand, startTimeout: Duration = .seconds(60), logger: Logger
    ) throws(DaemonError) {
        try configuration.checkDrivers(override: driverOverride, known: DriverRegistry.all)
        self.configuration = configuration
        self.system = system
        self.simulated = simulated
        command = worker
        self.startTimeout = startTimeout
        self.logger = logger
        bindings = HostBindings(configuration: configuration, system: system, logger: logger)
        children = try ChildProcesses()
    }

    /// The directory of the workers' directories, `workers` in the state directory.
    private var workersDirectory: String { configuration.stateDirectory + "/workers" }

    public func start() throws(DaemonError) {
        do { try bindings.acquire() } catch {
            state.withLock { $0.shutDown = true }
            children.stop()
            throw error
        }
        let present = bindings.present()
        var workers: [WorkerProcess] = []
        do throws(DaemonError) {
            try? FileManager.default.removeItem(atPath: workersDirectory)
            guard mkdir(workersDirectory, 0o700) == 0 else {
                throw .systemCall(operation: "create \(workersDirectory)", errno: Errno(rawValue: errno))
            }
            if configuration.bind { try bindings.bind(present.map(\.address)) }
            for context in plan(present).contexts { workers.append(try spawn(context)) }
        } catch {
            shutdown()
            throw error
        }
        for worker in workers { waitUntilStarted(worker) }
        let devices = status().devices
        if !present.isEmpty && !devices.contains(where: { $0.state == "running" }) {
            shutdown()
            throw .setup("no device could be started: \(devices.map { "\($0.address): \($0.detail ?? $0.state)" }.joined(separator: "; "))")
        }
    }

    /// A configured device udev reported added: passed to the worker hosting it if one runs,
    /// else bound when the daemon binds and given a worker of its own.
    public func deviceAdded(_ address: PCIAddress) {
        guard let entry = configuration.device(address), !state.withLock({ $0.shutDown }) else { return }
        do {
            if configuration.bind { try bindings.bind([address]) }
            if let worker = runningWorker(hosting: address) {
                _ = worker.ask("add \(address)")
                return
            }
            logger.notice("device added; starting a worker for it", metadata: ["device": "\(address)"])
            _ = try spawn(plan([entry]).contexts[0])
        } catch {
            logger.error("cannot attach the added device \(address): \(error)")
        }
    }

    /// Passes the removal to the worker hosting the device.
    public func removeDevice(_ address: PCIAddress, reason: String) {
        _ = runningWorker(hosting: address)?.ask("remove \(address)")
    }

    /// Stops every worker with SIGTERM and waits for them (killing one that has not ended
    /// within the start timeout), then gives back the bindings. Safe to call twice.
    public func shutdown() {
        guard
            let workers = state.withLock({ s -> [WorkerProcess]? in
                guard !s.shutDown else { return nil }
                s.shutDown = true
                return s.workers
            })
        else { return }
        logger.notice("stopping \(workers.filter(\.isRunning).count) worker processes")
        for worker in workers { worker.stop() }
        for worker in workers where !wait(startTimeout, until: { worker.hasEnded }) {
            logger.error("the worker process \(worker.pid.map(String.init) ?? "?") of \(worker.context.name) did not stop; killing it")
            worker.stop(SIGKILL)
        }
        children.stop()
        bindings.release()
        try? FileManager.default.removeItem(atPath: workersDirectory)
        let released = workers.flatMap { $0.context.devices.map(\.address.description) }
        logger.notice(
            "shut down; released \(released.isEmpty ? "no device" : released.joined(separator: ", ")) (every worker process ended)")
    }

    /// Every worker's devices; where two workers hosted a device, the later one's view.
    public func status() -> StatusReport {
        var devices: [String: DeviceStatus] = [:]
        for worker in state.withLock({ $0.workers }) {
            for device in worker.devices() { devices[device.address] = device }
        }
        return StatusReport(
            pid: getpid(), simulated: simulated, uptimeSeconds: Double((ContinuousClock.now - started) / .milliseconds(1)) / 1000,
            devices: devices.values.sorted { $0.address < $1.address })
    }

    // MARK: Private

    private func plan(_ devices: [DaemonConfiguration.Device]) -> IOMMUContextPlan {
        IOMMUContextPlan(devices) { IOMMUContextPlan.group(of: $0, system: system) }
    }

    private func runningWorker(hosting address: PCIAddress) -> WorkerProcess? {
        state.withLock { $0.workers }.last { $0.hosts(address.description) && $0.isRunning }
    }

    /// Writes the context's configuration (each device naming the context, so that the worker
    /// keeps it whole and by the same name) into a new worker directory and starts the worker.
    ///
    /// The worker is listed before it is started, so that a shutdown that begins meanwhile
    /// stops it too; none is started once shutdown has begun.
    private func spawn(_ context: IOMMUContextPlan.Context) throws(DaemonError) -> WorkerProcess {
        let backend = configuration.backend.description
        guard
            let worker = state.withLock({ s -> WorkerProcess? in
                guard !s.shutDown else { return nil }
                defer { s.spawned += 1 }
                s.workers.append(WorkerProcess(context: context, directory: "\(workersDirectory)/\(s.spawned)", backend: backend))
                return s.workers.last
            })
        else { throw .setup("the daemon is stopping; no worker is started for \(context.name)") }
        let pid: pid_t
        do throws(DaemonError) {
            let directory = worker.directory
            guard mkdir(directory, 0o700) == 0 else { throw .systemCall(operation: "create \(directory)", errno: Errno(rawValue: errno)) }
            let devices = context.devices.map { DaemonConfiguration.Device(address: $0.address, driver: $0.driver, context: context.name) }
            do {
                let data = try JSONEncoder().encode(ConfigurationFile(devices: devices, backend: configuration.backend))
                try data.write(to: URL(fileURLWithPath: WorkerProcess.configurationFile(in: directory)))
            } catch { throw .setup("cannot write the configuration of the worker in \(directory): \(error)") }
            pid = try children.spawn(command.executable, command.arguments(directory)) { [logger] status in
                if let reason = worker.ended(WorkerExit(waitStatus: status)) { logger.error("\(reason)") }
            }
        } catch {
            state.withLock { $0.workers.removeAll { $0 === worker } }
            throw error
        }
        worker.started(pid: pid)
        logger.info("worker process \(pid) hosts \(context.name): \(context.devices.map(\.address.description).joined(separator: ", "))")
        return worker
    }

    /// Waits until the worker has started its devices or has ended; kills one that does neither
    /// within the start timeout.
    private func waitUntilStarted(_ worker: WorkerProcess) {
        guard !wait(startTimeout, until: worker.hasStartedOrEnded) else { return }
        logger.error("the worker process of \(worker.context.name) did not start within \(startTimeout); killing it")
        worker.stop(SIGKILL)
    }

    /// Polls `condition` every 20 ms for up to `timeout`; returns whether it became true.
    private func wait(_ timeout: Duration, until condition: () -> Bool) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }
}
