import ArgumentParser
import CLIOutput
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
            guard let answer = try StatusClient.ask(metrics ? "metrics" : json ? "status" : "text", socketPath: socketPath) else {
                continue
            }
            print(answer, terminator: answer.hasSuffix("\n") ? "" : "\n")
            return
        }
        var message =
            "no vfiokit daemon is running (no daemon answers at \(directories.map { DaemonConfiguration.socketPath(in: $0) }.joined(separator: " or ")))"
        for directory in directories {
            if access(directory + "/daemon-bindings.json", F_OK) == 0 {
                message +=
                    "; a daemon was killed leaving devices bound (\(directory)/daemon-bindings.json): the next `vfiokit run` restores them"
            }
        }
        printError(message)
        throw ExitCode.failure
    }
}
