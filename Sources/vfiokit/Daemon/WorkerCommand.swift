import ArgumentParser
import CLIOutput
import CVFIO
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Logging
import ServiceLifecycle
import VFIODaemon
import VFIOKit

/// `vfiokit worker DIRECTORY --parent PID`: one worker process of `vfiokit run --isolate`
/// (hidden). It hosts the devices of one IOMMU context, listed in DIRECTORY/config.json, serves
/// their status on DIRECTORY/vfiokit.sock (having written its first report to
/// DIRECTORY/started.json, and each device's driver before probing it to DIRECTORY/driver-ADDRESS),
/// and on SIGTERM shuts them down in the daemon's
/// order. It ends with its supervisor (PR_SET_PDEATHSIG), and when it cannot start, writes why
/// to DIRECTORY/failure and exits 1. Binding, the journal and udev stay with the supervisor.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker", abstract: "One worker process of `vfiokit run --isolate` (started by it).", shouldDisplay: false)

    @Argument(help: "The worker's directory, made by its supervisor.")
    var directory: String

    @Option(help: "The supervisor's pid: the worker ends when it does.")
    var parent: Int32

    @Flag(help: "Host simulated devices on a mock kernel of the worker's own.")
    var simulated = false

    @Option(help: "The driver for devices that name none.")
    var driver: String?

    @Option(help: "Milliseconds between two units of work on a device whose driver exercises it.")
    var workInterval: Int = 10

    @OptionGroup var logging: LoggingOptions

    /// How `vfiokit run --isolate` starts this command: this executable, with the run's options.
    static func command(
        simulated: Bool, driver: String?, workInterval: Int, logLevel: Logger.Level?, logFormat: LoggingOptions.Format
    ) -> WorkerSupervisor.WorkerCommand {
        var path = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &path, path.count - 1)
        let executable = n > 0 ? String(decoding: path[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : "/proc/self/exe"
        var options = ["--parent", "\(getpid())", "--work-interval", "\(workInterval)"]
        if simulated { options.append("--simulated") }
        if let driver { options += ["--driver", driver] }
        if let logLevel { options += ["--log-level", logLevel.rawValue] }
        options += ["--log-format", logFormat.rawValue]
        return WorkerSupervisor.WorkerCommand(executable: executable) { [options] directory in ["worker", directory] + options }
    }

    func run() async throws {
        // SIGTERM, and so the ordered shutdown, when the supervisor ends however it ends; a
        // supervisor gone before this line is caught by the check after it.
        guard cvfio_set_parent_death_signal(SIGTERM) == 0, getppid() == parent else {
            printError("vfiokit worker: the supervisor (pid \(parent)) is gone")
            throw ExitCode.failure
        }
        var logger = logging.logger(label: "vfiokit.worker", defaultLevel: .notice)
        logger[metadataKey: "worker"] = "\(getpid())"
        do {
            try await host(logger: logger)
        } catch {
            try? "\(error)".write(toFile: WorkerProcess.failureFile(in: directory), atomically: true, encoding: .utf8)
            throw error
        }
    }

    private func host(logger: Logger) async throws {
        let path = WorkerProcess.configurationFile(in: directory)
        let file = try ConfigurationFile.load(path)
        let devices = try file.parsedDevices(path: path)
        let backend = file.backend.flatMap(Backend.init(rawValue:)) ?? .auto
        let kernel =
            simulated ? try SimulatedDaemonDevice.machine(devices.map(\.address), backend: backend, bind: false, driverName: driver) : nil
        let configuration = DaemonConfiguration(
            devices: devices, backend: backend, stateDirectory: directory, workInterval: .milliseconds(workInterval))
        let host = try DriverHost(
            configuration: configuration, system: kernel ?? HostSystemCalls.shared, simulated: simulated, driverOverride: driver,
            logger: logger
        ) { [directory] address, driver in
            try? driver.write(toFile: WorkerProcess.driverFile(in: directory, for: address), atomically: true, encoding: .utf8)
        }
        let startedFile = WorkerProcess.startedFile(in: directory)
        let options = DaemonService.Options(takesDeviceEvents: true) { report in
            try? JSONEncoder().encode(report).write(to: URL(fileURLWithPath: startedFile), options: .atomic)
        }
        let service = DaemonService(host: host, options: options, logger: logger)
        try await ServiceGroup(configuration: .init(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            .run()
        if let kernel { SimulatedDaemonDevice.logAftermath(kernel, devices.map(\.address), logger: logger) }
    }
}
