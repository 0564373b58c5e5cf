import Logging
import PCI
import VFIODrivers
import VFIOExport

/// The export servers of one hosted NVMe device: started once its driver is up, each on I/O
/// queue pairs of its own (export `i` on pair `i`: NBD clients and a ublk queue each own their
/// pair's thread), and stopped before the driver shuts down.
final class DeviceExports: Sendable {
    private enum Server: @unchecked Sendable {
        case nbd(NBDServer)
        case ublk(UblkDevice)
    }

    private let servers: [(specification: ExportSpecification, server: Server)]

    /// The NVMe driver's configuration the exports need: one polled I/O queue pair per export
    /// (NBD's queue owners and ublk's queue threads poll their pairs).
    static func driverConfiguration(for exports: [ExportSpecification]) -> NVMeDriver.Configuration {
        var configuration = NVMeDriver.Configuration()
        configuration.polled = true
        configuration.queues = exports.count
        return configuration
    }

    /// The default NBD socket of `address`'s `namespace` in the state directory.
    static func defaultSocket(_ address: PCIAddress, namespace: UInt32, stateDirectory: String) -> String {
        "\(stateDirectory)/nbd-\(address.description.replacing(":", with: "-"))-ns\(namespace).sock"
    }

    /// Starts every export on `driver`, in order; on a failure stops those started and throws
    /// a message naming the export.
    init(
        _ exports: [ExportSpecification], driver: NVMeDriver, address: PCIAddress, stateDirectory: String, logger: Logger
    ) throws(ExportSpecificationError) {
        guard driver.queueCount >= exports.count else {
            throw .init(
                exports.map(\.description).joined(separator: " "),
                "the controller granted \(driver.queueCount) I/O queue pairs; \(exports.count) exports need one each")
        }
        var started: [(ExportSpecification, Server)] = []
        for (index, export) in exports.enumerated() {
            do {
                let server = try Self.start(export, queue: index, driver: driver, address: address, stateDirectory: stateDirectory)
                started.append((export, server))
                logger.notice(
                    "exporting namespace \(export.namespace) over \(export.kind.rawValue) at \(Self.target(server))\(export.readOnly ? ", read-only" : "")"
                )
            } catch {
                for (_, server) in started.reversed() { _ = Self.stop(server) }
                throw .init(export.description, String(describing: error))
            }
        }
        servers = started
    }

    private static func start(
        _ export: ExportSpecification, queue: Int, driver: NVMeDriver, address: PCIAddress, stateDirectory: String
    ) throws -> Server {
        switch export.kind {
        case .nbd:
            var configuration = NBDServer.Configuration()
            switch export.endpoint ?? .defaultSocket {
            case .defaultSocket:
                configuration.socketPath = defaultSocket(address, namespace: export.namespace, stateDirectory: stateDirectory)
            case .unixSocket(let path): configuration.socketPath = path
            case .loopback(let host, let port): configuration.tcp = (host, port)
            }
            configuration.readOnly = export.readOnly
            configuration.firstQueue = queue
            configuration.queues = 1
            let server = try NBDServer(driver: driver, namespace: export.namespace, configuration: configuration)
            try server.start()
            return .nbd(server)
        case .ublk:
            let backend = try NVMeUblkBackend(driver: driver, namespace: export.namespace, readOnly: export.readOnly, firstQueue: queue)
            return .ublk(try UblkDevice.start(backend: backend, queues: 1))
        }
    }

    /// Stops every export, last started first: NBD clients get their in-flight replies and an
    /// orderly disconnect, a ublk device is stopped and deleted. Safe to call twice.
    func stop(logger: Logger) {
        for (export, server) in servers.reversed() {
            for problem in Self.stop(server) {
                logger.warning("stopping the \(export.kind.rawValue) export of namespace \(export.namespace): \(problem)")
            }
            logger.notice("stopped the \(export.kind.rawValue) export of namespace \(export.namespace)")
        }
    }

    /// Stops `server`; what went wrong, if anything.
    private static func stop(_ server: Server) -> [String] {
        switch server {
        case .nbd(let nbd):
            let stuck = nbd.stop()
            return stuck == 0 ? [] : ["\(stuck) client(s) dropped with requests the controller never finished"]
        case .ublk(let ublk):
            return ublk.stop().map(\.description)
        }
    }

    private static func target(_ server: Server) -> String {
        switch server {
        case .nbd(let nbd): [nbd.uri, nbd.tcpURI].compactMap { $0 }.uniqued().joined(separator: " ")
        case .ublk(let ublk): ublk.blockDevice
        }
    }

    /// Each export's figures now.
    var status: [ExportStatus] {
        servers.map { export, server in
            switch server {
            case .nbd(let nbd):
                let s = nbd.statistics
                return ExportStatus(
                    kind: "nbd", namespace: export.namespace, target: Self.target(server), readOnly: export.readOnly,
                    requests: s.requests, errors: s.errors, detail: s)
            case .ublk(let ublk):
                let s = ublk.statistics
                return ExportStatus(
                    kind: "ublk", namespace: export.namespace, target: ublk.blockDevice, readOnly: export.readOnly,
                    requests: s.requests, errors: s.errors, detail: s)
            }
        }
    }
}

extension Array where Element: Equatable {
    fileprivate func uniqued() -> [Element] { reduce(into: []) { if !$0.contains($1) { $0.append($1) } } }
}
