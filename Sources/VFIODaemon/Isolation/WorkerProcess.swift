import FoundationEssentials
import PCI
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One worker process as its supervisor sees it: the IOMMU context it hosts, its directory
/// (its configuration, the status report it wrote once started, its status socket, and the
/// reason it could not start, if so), its last status report, and how it ended.
public final class WorkerProcess: Sendable {
    let context: IOMMUContextPlan.Context
    let directory: String
    private let backend: String

    private struct State {
        var pid: pid_t?
        var devices: [DeviceStatus]?
        /// Set once it ended: nil when it was asked to stop and exited 0, else why not.
        var ended: String??
        var stopping = false
    }
    private let state = Mutex(State())

    /// The file a worker that cannot start writes its reason to, before it exits 1.
    public static func failureFile(in directory: String) -> String { directory + "/failure" }
    /// The configuration a worker reads: the devices of its context.
    public static func configurationFile(in directory: String) -> String { directory + "/config.json" }
    /// The name of the driver a worker attaches to `address`, written before it probes.
    public static func driverFile(in directory: String, for address: PCIAddress) -> String { "\(directory)/driver-\(address)" }
    /// The status report a worker writes once its devices have started, before it serves its socket.
    public static func startedFile(in directory: String) -> String { directory + "/started.json" }

    init(context: IOMMUContextPlan.Context, directory: String, backend: String) {
        self.context = context
        self.directory = directory
        self.backend = backend
    }

    var socketPath: String { DaemonConfiguration.socketPath(in: directory) }
    var pid: pid_t? { state.withLock { $0.pid } }
    /// Records its pid; one asked to stop while it was being started is stopped now.
    func started(pid: pid_t) {
        let stopping = state.withLock { s in
            s.pid = pid
            return s.stopping
        }
        if stopping { kill(pid, SIGTERM) }
    }
    var hasEnded: Bool { state.withLock { $0.ended != nil } }
    var isRunning: Bool { state.withLock { $0.pid != nil && $0.ended == nil } }
    func hosts(_ address: String) -> Bool { context.devices.contains { $0.address.description == address } }

    /// True once it has written its first report (which is then kept) or has ended.
    func hasStartedOrEnded() -> Bool {
        let ended = hasEnded
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: Self.startedFile(in: directory))),
            let report = try? JSONDecoder().decode(StatusReport.self, from: data)
        else { return ended }
        state.withLock { s in if s.devices == nil { s.devices = report.devices } }
        return true
    }

    /// Asks it to stop: SIGTERM, to which it shuts its devices down in order and exits 0.
    func stop(_ signal: Int32 = SIGTERM) {
        guard
            let pid = state.withLock({ s -> pid_t? in
                s.stopping = true
                return s.ended == nil ? s.pid : nil
            })
        else { return }
        kill(pid, signal)
    }

    /// Passes a request to its socket (a status, a device event); nil when it does not answer.
    func ask(_ request: String) -> String? {
        guard isRunning else { return nil }
        return (try? StatusClient.ask(request, socketPath: socketPath)) ?? nil
    }

    /// Its devices as it last reported them (asking it when it runs), or as configured before
    /// its first report: "starting" while it starts, "failed" with the reason once it ended so.
    func devices() -> [DeviceStatus] {
        if let answer = ask("status"), let report = try? JSONDecoder().decode(StatusReport.self, from: Data(answer.utf8)) {
            state.withLock { $0.devices = report.devices }
        }
        let (devices, ended) = state.withLock { ($0.devices, $0.ended) }
        let known =
            devices
            ?? context.devices.map { d in
                DeviceStatus(
                    address: d.address.description, driver: driver(of: d), backend: backend, context: context.name,
                    state: "starting", detail: nil, interrupts: [], operations: 0, errors: 0, lastError: nil,
                    dma: .init(mappings: 0, bytes: 0), iommuFaults: nil)
            }
        guard let ended else { return known }
        return known.map { d in
            var d = d
            guard d.state == "running" || d.state == "starting" else { return d }
            d.state = ended == nil ? "stopped" : "failed"
            d.detail = ended
            d.dma = .init(mappings: 0, bytes: 0)
            return d
        }
    }

    /// The driver the worker said it attaches, else the configured one, else "unknown".
    private func driver(of device: DaemonConfiguration.Device) -> String {
        let told = try? String(contentsOfFile: Self.driverFile(in: directory, for: device.address), encoding: .utf8)
        return told ?? device.driver ?? "unknown"
    }

    /// Records how it ended; returns the reason when it was not a clean stop it was asked for.
    func ended(_ exit: WorkerExit) -> String? {
        let (stopping, devices) = state.withLock { ($0.stopping, $0.devices) }
        var reason: String?
        if let failure = try? String(contentsOfFile: Self.failureFile(in: directory), encoding: .utf8), !failure.isEmpty {
            reason = failure.trimmingCharacters(in: .whitespacesAndNewlines)
        } else if !(stopping && exit.succeeded) {
            let drivers = (devices?.map { ($0.driver, $0.address) } ?? context.devices.map { (driver(of: $0), $0.address.description) })
                .map { "\($0.0) on \($0.1)" }
            let subject =
                drivers.count == 1
                ? "driver \(drivers[0])" : "the worker process of \(context.name) (drivers \(drivers.joined(separator: ", ")))"
            let what = drivers.count == 1 ? "the device" : "its devices"
            reason = "\(subject) \(exit); its process ended and the kernel released \(what)"
        }
        state.withLock { $0.ended = .some(reason) }
        return reason
    }
}
