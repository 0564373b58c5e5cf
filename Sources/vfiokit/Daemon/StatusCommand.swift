import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import VFIODaemon

/// `vfiokit status [--json | --metrics]`: asks the running daemon over its Unix socket.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show what the running daemon hosts: devices, drivers, interrupts, DMA, faults.",
        discussion: """
            Asks `vfiokit run` over its socket (vfiokit.sock in $VFIOKIT_STATE_DIR, default /run/vfiokit). \
            Exits 1 and says so when no daemon runs.
            """)

    @Flag(help: "Print JSON: {pid, simulated, uptimeSeconds, devices: [{address, driver, state, interrupts, dma, …}]}.")
    var json = false

    @Flag(help: "Print the Prometheus metrics instead.")
    var metrics = false

    func run() throws {
        let directories = StateDirectory.forStatus()
        for directory in directories {
            let socketPath = DaemonConfiguration.socketPath(in: directory)
            guard let answer = try Self.ask(metrics ? "metrics" : json ? "status" : "text", socketPath: socketPath) else { continue }
            print(answer, terminator: answer.hasSuffix("\n") ? "" : "\n")
            return
        }
        var message = "no vfiokit daemon is running (no daemon answers at \(directories.map { DaemonConfiguration.socketPath(in: $0) }.joined(separator: " or ")))"
        for directory in directories {
            if access(directory + "/daemon-bindings.json", F_OK) == 0 {
                message += "; a daemon was killed leaving devices bound (\(directory)/daemon-bindings.json): the next `vfiokit run` restores them"
            }
        }
        printError(message)
        throw ExitCode.failure
    }

    /// Sends one request line and reads the answer to the end; nil when nothing listens there.
    static func ask(_ request: String, socketPath: String) throws -> String? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ValidationError("cannot create a socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        guard socketPath.utf8.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: socketPath.utf8)
            raw[socketPath.utf8.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            if errno == EACCES {
                throw ValidationError("\(socketPath) refuses this user: run as root or as a member of the daemon's group (vfio)")
            }
            return nil
        }
        let line = request + "\n"
        _ = line.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            answer += chunk[..<n]
        }
        return String(decoding: answer, as: UTF8.self)
    }
}
