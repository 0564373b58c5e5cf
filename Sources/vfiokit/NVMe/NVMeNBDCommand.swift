#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import VFIODrivers
import VFIOExport

/// `vfiokit nvme nbd ADDRESS|--simulated IMAGE`: serves a namespace over NBD until SIGTERM or
/// SIGINT, then disconnects clients in order and shuts the controller down.
struct NVMeNBDCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nbd",
        abstract: "Serve a namespace over NBD (Unix socket, optionally 127.0.0.1) until SIGTERM or SIGINT.",
        discussion: """
            Prints the URI clients use on its first line (nbd+unix:///?socket=PATH), e.g. for \
            `nbdinfo`, `nbdcopy`, `qemu-img` or `nbd-client`. Each client is served on one polled NVMe I/O queue \
            pair's owner thread (round-robin over --queues). On SIGTERM or SIGINT no new client is accepted, \
            in-flight requests finish and are answered, clients are disconnected, and the controller is shut down.
            """)

    @OptionGroup var target: NVMeTarget

    @Option(help: "The namespace to serve.")
    var namespace: UInt32 = 1

    @Option(help: "The Unix socket to listen on (mode 0660, group vfio if it exists). Default: $TMPDIR/vfiokit-nbd-PID.sock")
    var socket: String?

    @Option(help: "Also listen on a loopback TCP address, e.g. 127.0.0.1:10809.")
    var tcp: String?

    @Option(help: "NVMe I/O queue pairs to spread clients over.")
    var queues = 1

    @Option(help: "Requests in flight per client.")
    var depth = 32

    @Flag(help: "Refuse writes (EPERM).")
    var readOnly = false

    func validate() throws {
        guard (1...64).contains(queues) else { throw ValidationError("--queues \(queues) is outside 1…64") }
        guard (1...1024).contains(depth) else { throw ValidationError("--depth \(depth) is outside 1…1024") }
        if let tcp { _ = try Self.parseTCP(tcp) }
    }

    static func parseTCP(_ text: String) throws -> (host: String, port: UInt16) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            throw ValidationError("--tcp \(text) is not HOST:PORT, e.g. 127.0.0.1:10809")
        }
        return (String(text[..<colon]), port)
    }

    func run() throws {
        let stop = try StopSignals()

        var driverConfiguration = NVMeDriver.Configuration()
        driverConfiguration.polled = true
        driverConfiguration.queues = queues
        let session = try target.open(driverConfiguration)
        defer { session.close() }
        var configuration = NBDServer.Configuration()
        let tmp = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        configuration.socketPath = socket ?? "\(tmp)/vfiokit-nbd-\(getpid()).sock"
        configuration.tcp = try tcp.map(Self.parseTCP)
        configuration.readOnly = readOnly
        configuration.queues = queues
        configuration.depth = depth
        let server: NBDServer
        do {
            _ = try session.namespace(namespace)
            server = try NBDServer(driver: session.driver, namespace: namespace, configuration: configuration)
            try server.start()
        } catch let error as NBDError {
            throw ValidationError(error.description)
        }
        let g = server.geometry
        print(server.uri)
        if let tcpURI = server.tcpURI { print(tcpURI) }
        print(
            "nbd: namespace \(namespace): \(g.blocks) blocks of \(g.blockSize) bytes, \(g.maxTransfer) bytes per request, "
                + "\(min(queues, session.driver.queueCount)) queue pair(s)" + (g.readOnly ? ", read-only" : ""))
        fflush(nil)
        stop.wait()
        let stuck = server.stop()
        let s = server.statistics
        print(
            "nbd: stopped after \(s.connections) client(s), \(s.requests) requests (\(s.reads) reads, \(s.writes) writes, "
                + "\(s.flushes) flushes), \(s.bytesRead) bytes read, \(s.bytesWritten) written, \(s.errors) answered with an error")
        if stuck > 0 {
            print("nbd: \(stuck) client(s) still had requests on the device after the command timeout; their buffers were left in place")
            throw ExitCode(1)
        }
    }
}
