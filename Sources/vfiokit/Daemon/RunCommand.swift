import ArgumentParser
import CLIOutput
#if canImport(Glibc)
import Glibc
#endif
import Logging
import PCI
import ServiceLifecycle
import VFIODaemon
import VFIODrivers
import VFIOKit
import VFIOMock

/// `vfiokit run [ADDRESS...] [--driver NAME] [--config FILE] [--bind] [--isolate] [--export SPEC...]
/// [--read-only] [--simulated-nvme]`: the driver daemon.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Host drivers on devices until SIGTERM or SIGINT (the driver daemon).",
        discussion: """
            Opens the devices named, or those of --config, on vfio-pci or uio_pci_generic (with --bind it \
            binds them first and gives their original drivers back at the end), attaches the driver whose \
            match table takes each (or --driver), and runs until told to stop. Then it stops the drivers, \
            disables interrupts, unmaps DMA, resets the devices and restores the bindings it made. \
            A REQ interrupt or a udev removal releases that device alone. `vfiokit status` asks it what it \
            is doing. With no device and no config it runs on a simulated device and says so. \
            With --isolate each IOMMU context's drivers run in a worker process of their own: a driver that \
            traps then takes down only its context, whose devices show as failed; the others keep running.

            --export serves a namespace of the NVMe device named (one ADDRESS; with --config, each device's \
            "exports" list): nbd (a Unix socket in the state directory), nbd:/path.sock, nbd:127.0.0.1:PORT or \
            ublk (/dev/ublkbN; needs ublk_drv and root), then ,namespace=N (default 1) and ,read-only. Each \
            export gets a polled I/O queue pair of its own; it starts once the driver is up, and on SIGTERM its \
            clients get their in-flight replies and an orderly disconnect before the controller shuts down. \
            Each export is printed (export nbd namespace 1 of ADDRESS: nbd+unix:///?socket=PATH) when serving. \
            With no device, --simulated-nvme adds a simulated NVMe controller backed by a sparse image in the \
            state directory, exported over NBD (or as --export says).
            """)

    @Argument(help: "The devices, as 0000:03:00.0 or 03:00.0.", transform: { try PCIAddress(parsing: $0) })
    var addresses: [PCIAddress] = []

    @Option(help: "The driver for devices that name none (default: the first whose match table takes the device): \(DriverRegistry.names).")
    var driver: String?

    @Option(
        help: ArgumentHelp(
            "A JSON file of devices: {\"bind\": true, \"devices\": [{\"address\": …, \"driver\": …, \"context\": …}]}.", valueName: "file"))
    var config: String?

    @Flag(
        help: "Bind the devices to vfio-pci (uio_pci_generic with --backend uio) first, and give back their original drivers at shutdown.")
    var bind = false

    @Flag(
        help:
            "Run each IOMMU context's drivers in a worker process of its own (config key \"isolate\"); a worker that dies is reported and not restarted."
    )
    var isolate = false

    @Option(help: "With no device and no config: how many simulated devices to host, from 0000:00:04.0 on (1-28).")
    var simulatedDevices = 1

    @Option(
        name: .customLong("export"),
        help: ArgumentHelp(
            "Serve a namespace of the NVMe device: nbd, nbd:/path.sock, nbd:127.0.0.1:PORT or ublk, then ,namespace=N ,read-only (repeatable).",
            valueName: "spec"))
    var exports: [String] = []

    @Flag(help: "Make every --export read-only: clients' writes are refused (EPERM).")
    var readOnly = false

    @Flag(
        help:
            "With no device and no config: also host a simulated NVMe controller on a sparse image in the state directory, exported over NBD."
    )
    var simulatedNvme = false

    @Option(help: "auto, iommufd, legacy, noiommu or uio (VFIOKIT_BACKEND overrides auto).")
    var backend: String = "auto"

    @Option(
        help: ArgumentHelp(
            "Also serve Prometheus metrics over HTTP at this IPv4 address and port; it has no authentication, so an address other than loopback needs --metrics-public.",
            valueName: "127.0.0.1:port"))
    var metricsAddress: String?

    @Flag(help: "Allow a --metrics-address that is not loopback (anyone who reaches it reads the metrics).")
    var metricsPublic = false

    @Option(
        help: ArgumentHelp(
            "Check this configuration file (keys, addresses, drivers, backend) and exit, touching no device.", valueName: "file"))
    var checkConfig: String?

    @Option(help: "Seconds between stats lines on stderr; 0 for none (default: 5 on a terminal, else none).")
    var statsInterval: Double?

    @Option(help: "Milliseconds between two units of work on a device whose driver exercises it.")
    var workInterval: Int = 10

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        guard let backend = Backend(rawValue: backend) else {
            throw ValidationError("unknown backend \"\(self.backend)\": use \(Backend.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let metrics = try metricsAddress.map { try Self.parseMetricsAddress($0, allowPublic: metricsPublic) }
        if let driver, DriverRegistry.named(driver) == nil {
            throw ValidationError("unknown driver \"\(driver)\": the drivers are \(DriverRegistry.names)")
        }
        guard (1...28).contains(simulatedDevices) else {
            throw ValidationError(
                "--simulated-devices wants 1 to 28 (the free device numbers of the simulated bus), not \(simulatedDevices)")
        }
        if let checkConfig {
            let file = try ConfigurationFile.load(checkConfig)
            let devices = try file.parsedDevices(path: checkConfig)
            try DaemonConfiguration(devices: devices, stateDirectory: "").checkDrivers(override: driver, known: DriverRegistry.all)
            print(
                "\(checkConfig): valid; \(devices.count) device\(devices.count == 1 ? "" : "s") (\(devices.map(\.address.description).joined(separator: ", ")))"
            )
            return
        }
        let logger = logging.logger(label: "vfiokit.daemon", defaultLevel: .notice)
        let exportSpecifications = try parsedExports()

        var devices = addresses.map { DaemonConfiguration.Device(address: $0, exports: exportSpecifications) }
        var bind = self.bind
        var isolate = self.isolate
        var backendChoice = backend
        if let config {
            let file = try ConfigurationFile.load(config)
            devices += try file.parsedDevices(path: config)
            bind = bind || (file.bind ?? false)
            isolate = isolate || (file.isolate ?? false)
            if let b = file.backend.flatMap(Backend.init(rawValue:)), b != .auto { backendChoice = b }
        }
        if isolate, devices.contains(where: { !$0.exports.isEmpty }) || simulatedNvme {
            throw ValidationError(
                "exports run in the daemon's own process, not in --isolate's workers: drop --isolate (or config \"isolate\") to export")
        }
        if simulatedNvme, !devices.isEmpty {
            throw ValidationError(
                "--simulated-nvme is for a run with no device and no config; give --export to the NVMe device named instead")
        }
        if simulatedNvme, simulatedDevices > 27 {
            throw ValidationError("--simulated-nvme takes a device number too: give at most 27 --simulated-devices")
        }
        // Everything that can refuse the run is checked before a banner is printed or a device opened.
        let stateDirectory = StateDirectory.forDaemon()
        try StateDirectory.refuseWhenADaemonRuns(besides: stateDirectory)
        if let metrics { try DaemonService.checkMetricsAddress(host: metrics.host, port: metrics.port) }

        var system: any SystemCalls = HostSystemCalls.shared
        var simulated: (kernel: MockKernel, addresses: [PCIAddress])?
        var simulatedController: NVMeController?
        if devices.isEmpty {
            let addresses = SimulatedDaemonDevice.addresses(count: simulatedDevices)
            let kind = driver == NVMeVerifyDriver.name ? "NVMe" : SimulatedDaemonDevice.name
            let banner =
                "SIMULATED: no device or config given, so the \(driver ?? SimulatedDaemonDevice.name) driver runs on simulated "
                + "\(kind) devices at \(addresses.map(\.description).joined(separator: ", ")) through the mock VFIO kernel model"
                + "\(isolate ? " (a mock kernel of its own in each worker process)" : ""); no hardware is touched"
            logger.notice("\(banner)")
            let kernel = try SimulatedDaemonDevice.machine(addresses, backend: backendChoice, bind: bind, driverName: driver)
            var nvme: [DaemonConfiguration.Device] = []
            if simulatedNvme {
                let address = SimulatedDaemonDevice.addresses(count: simulatedDevices + 1).last!
                simulatedController = try SimulatedNVMeExport.plug(
                    into: kernel, at: address, binding: bind ? .pciStub : .vfioPCI, stateDirectory: stateDirectory)
                nvme = [SimulatedNVMeExport.device(address, exports: exportSpecifications)]
            }
            for device in nvme {
                let image = SimulatedNVMeExport.imagePath(stateDirectory: stateDirectory)
                let kinds = device.exports.map(\.kind.rawValue).joined(separator: ", ")
                logger.notice(
                    "SIMULATED: and an NVMe controller at \(device.address) on the sparse image \(image), served by the nvme driver and exported over \(kinds)"
                )
            }
            devices = addresses.map { DaemonConfiguration.Device(address: $0) } + nvme
            system = kernel
            simulated = (kernel, addresses + nvme.map(\.address))
        }
        let configuration = DaemonConfiguration(
            devices: devices, bind: bind, backend: backendChoice, stateDirectory: stateDirectory,
            workInterval: .milliseconds(workInterval), watchUdev: simulated == nil)
        let host: any DaemonHost
        if isolate {
            host = try WorkerSupervisor(
                configuration: configuration, system: system, simulated: simulated != nil, driverOverride: driver,
                worker: WorkerCommand.command(
                    simulated: simulated != nil, driver: driver, workInterval: workInterval, logLevel: logging.logLevel,
                    logFormat: logging.logFormat),
                logger: logger)
        } else {
            host = try DriverHost(
                configuration: configuration, system: system, simulated: simulated != nil, driverOverride: driver, logger: logger)
        }
        let interval = statsInterval ?? (isatty(2) != 0 ? 5 : 0)
        let options = DaemonService.Options(
            metricsAddress: metrics, statsInterval: interval > 0 ? .milliseconds(Int(interval * 1000)) : nil,
            printStats: { printError($0) },
            started: { report in
                for line in SimulatedNVMeExport.exportLines(report) { print(line) }
                fflush(nil)
            })
        let service = DaemonService(host: host, options: options, logger: logger)
        let group = ServiceGroup(
            configuration: .init(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        simulatedController?.stop()
        // Under --isolate each worker's mock kernel did the work, and each worker reports its own devices.
        if let simulated, !isolate { SimulatedDaemonDevice.logAftermath(simulated.kernel, simulated.addresses, logger: logger) }
    }

    /// `--export`s, with `--read-only` applied; only for one device named (or `--simulated-nvme`).
    private func parsedExports() throws -> [ExportSpecification] {
        if readOnly, exports.isEmpty {
            throw ValidationError("--read-only applies to --export: give the export too, e.g. --export nbd --read-only")
        }
        guard !exports.isEmpty else { return [] }
        guard addresses.count == 1 || (addresses.isEmpty && simulatedNvme) else {
            throw ValidationError(
                "--export serves a namespace of one NVMe device: give exactly one ADDRESS (or --simulated-nvme), "
                    + "or list each device's \"exports\" in --config")
        }
        do {
            let parsed = try exports.map { (text) throws(ExportSpecificationError) in
                try ExportSpecification(parsing: text, readOnly: readOnly)
            }
            try ExportSpecification.checkDistinct(parsed)
            return parsed
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// `--metrics-address`: an IPv4 address and port; loopback unless `allowPublic`.
    static func parseMetricsAddress(_ text: String, allowPublic: Bool) throws -> (host: String, port: UInt16) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]), port > 0 else {
            throw ValidationError("--metrics-address wants an IPv4 address and port such as 127.0.0.1:9464, not \"\(text)\"")
        }
        let host = String(text[..<colon])
        var address = in_addr()
        guard inet_pton(AF_INET, host, &address) == 1 else {
            throw ValidationError("--metrics-address wants an IPv4 address, not the name \"\(host)\" (use 127.0.0.1:\(port))")
        }
        guard allowPublic || UInt32(bigEndian: address.s_addr) >> 24 == 127 else {
            throw ValidationError(
                "--metrics-address \(text) is not loopback, and the metrics endpoint has no authentication: add --metrics-public to serve it there anyway"
            )
        }
        return (host, port)
    }
}
