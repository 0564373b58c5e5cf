#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import CLIOutput
import Foundation

/// `vfiokit-bench export`: `nbdcopy` into and back out of two NBD servers on Unix sockets, taken
/// in turn over the same sizes of sparse raw image: `vfiokit nvme nbd --simulated` (the export on
/// the simulated controller) against `qemu-nbd`. Both are child processes of this one; each copy
/// out is compared with the data copied in, so a figure is only printed for work done right.
struct ExportBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "The NBD export against qemu-nbd: nbdcopy in and out, taken in turn, with the ratio's spread.")

    @Option(help: "MiB copied in and out per run.") var mebibytes = 256
    @Option(help: "Runs of each server, taken in turn.") var rounds = 3
    @Option(help: "The vfiokit binary (default: the one beside vfiokit-bench).") var vfiokit: String?
    @Flag(help: "Print JSON.") var json = false

    struct Run: Encodable {
        let server: String
        let in_mib_s: Double
        let out_mib_s: Double
    }

    struct Result: Encodable {
        let mebibytes: Int
        let runs: [Run]
        let vfiokit_mib_s: Double
        let qemu_nbd_mib_s: Double
        /// vfiokit over qemu-nbd, median and spread of the per-round ratios (in and out together).
        let export_ratio: Double
        let export_ratio_min: Double
        let export_ratio_max: Double
        /// The export's CPU time (user and system, all its threads) per request it served, and
        /// each server's CPU time per MiB moved, over all rounds.
        let vfiokit_cpu_us_per_request: Double
        let vfiokit_cpu_ms_per_mib: Double
        let qemu_nbd_cpu_ms_per_mib: Double
    }

    func validate() throws {
        guard (1...4096).contains(mebibytes) else { throw ValidationError("--mebibytes \(mebibytes) is outside 1…4096") }
        guard (1...20).contains(rounds) else { throw ValidationError("--rounds \(rounds) is outside 1…20") }
    }

    func run() throws {
        let tools = try ["nbdcopy", "qemu-nbd", "setpriv"].map { name in
            guard let path = Self.which(name) else {
                throw ValidationError("\(name) is not installed: install libnbd-bin, qemu-utils and util-linux (bash .ci/setup does)")
            }
            return path
        }
        let (nbdcopy, qemuNBD, setpriv) = (tools[0], tools[1], tools[2])
        let vfiokitPath =
            vfiokit ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("vfiokit").path
        guard FileManager.default.isExecutableFile(atPath: vfiokitPath) else {
            throw ValidationError("no vfiokit at \(vfiokitPath): build it (swift build -c release) or pass --vfiokit PATH")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vfiokit-bench-export-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let size = mebibytes << 20
        let source = dir.appendingPathComponent("source"), copied = dir.appendingPathComponent("copied")
        try Self.randomFile(source, bytes: size)

        // The servers, each over its own sparse image; setpriv ends them if this process dies.
        let vfiokitSocket = dir.appendingPathComponent("vfiokit.sock").path
        let qemuSocket = dir.appendingPathComponent("qemu.sock").path
        let qemuImage = dir.appendingPathComponent("qemu.img")
        guard FileManager.default.createFile(atPath: qemuImage.path, contents: nil), truncate(qemuImage.path, off_t(size)) == 0 else {
            throw ValidationError("cannot create the image \(qemuImage.path): \(String(cString: strerror(errno)))")
        }
        let servers = [
            (
                "vfiokit",
                try ChildServer(
                    setpriv,
                    [
                        vfiokitPath, "nvme", "nbd", "--simulated", dir.appendingPathComponent("vfiokit.img").path,
                        "--create", "\(mebibytes)M", "--socket", vfiokitSocket,
                    ], socket: vfiokitSocket, output: dir.appendingPathComponent("vfiokit.out"))
            ),
            (
                "qemu-nbd",
                try ChildServer(
                    setpriv,
                    [
                        qemuNBD, "-t", "-e", "16", "--cache=writeback", "-f", "raw",
                        "-k", qemuSocket, qemuImage.path,
                    ], socket: qemuSocket, output: dir.appendingPathComponent("qemu-nbd.out"))
            ),
        ]
        defer { for (_, s) in servers { s.stop() } }

        var runs: [Run] = []
        for _ in 0..<rounds {
            for (name, server) in servers {
                let uri = "nbd+unix:///?socket=\(server.socket)"
                try? FileManager.default.removeItem(at: copied)
                let inSeconds = try Self.timed(nbdcopy, [source.path, uri])
                let outSeconds = try Self.timed(nbdcopy, [uri, copied.path])
                guard FileManager.default.contentsEqual(atPath: source.path, andPath: copied.path) else {
                    throw ValidationError("\(name): the data copied out differs from the data copied in")
                }
                runs.append(Run(server: name, in_mib_s: Double(mebibytes) / inSeconds, out_mib_s: Double(mebibytes) / outSeconds))
            }
        }
        let moved = Double(2 * rounds * mebibytes)
        let cpu = servers.map { $0.1.cpuSeconds() }
        for (_, server) in servers { server.stop() }
        // `nvme nbd` says at its stop how many requests it served.
        let summary = (try? String(contentsOf: dir.appendingPathComponent("vfiokit.out"), encoding: .utf8)) ?? ""
        let words = summary.split(separator: "\n").first { $0.hasPrefix("nbd: stopped after") }?.split(separator: " ") ?? []
        guard let at = words.firstIndex(of: "requests"), at > 0, let requests = Double(words[at - 1]), requests > 0 else {
            throw ValidationError("vfiokit nvme nbd did not report the requests it served: \(summary)")
        }
        let both = { (r: Run) in 2 / (1 / r.in_mib_s + 1 / r.out_mib_s) }
        let ours = runs.filter { $0.server == "vfiokit" }, theirs = runs.filter { $0.server == "qemu-nbd" }
        let ratios = zip(ours, theirs).map { both($0) / both($1) }.sorted()
        let result = Result(
            mebibytes: mebibytes, runs: runs,
            vfiokit_mib_s: Self.median(ours.map(both)), qemu_nbd_mib_s: Self.median(theirs.map(both)),
            export_ratio: Self.median(ratios), export_ratio_min: ratios.first ?? 0, export_ratio_max: ratios.last ?? 0,
            vfiokit_cpu_us_per_request: cpu[0] / requests * 1e6, vfiokit_cpu_ms_per_mib: cpu[0] / moved * 1e3,
            qemu_nbd_cpu_ms_per_mib: cpu[1] / moved * 1e3)
        let spread = { (rs: [Run]) in rs.map { "\(Int($0.in_mib_s))/\(Int($0.out_mib_s))" }.joined(separator: ", ") }
        try printResult(
            result, json: json,
            lines: [
                "export: nbdcopy \(mebibytes) MiB in then out, \(rounds) rounds taken in turn, Unix sockets (in/out MiB/s per run)",
                "  vfiokit nvme nbd --simulated: \(spread(ours))",
                "  qemu-nbd -t -e 16 --cache=writeback: \(spread(theirs))",
                "  export_ratio \(fixed(result.export_ratio)) (\(fixed(result.export_ratio_min))–\(fixed(result.export_ratio_max))), target 1.0",
                "  CPU: vfiokit \(fixed(result.vfiokit_cpu_us_per_request)) µs per request (\(Int(requests)) requests), "
                    + "\(fixed(result.vfiokit_cpu_ms_per_mib)) ms per MiB; qemu-nbd \(fixed(result.qemu_nbd_cpu_ms_per_mib)) ms per MiB",
            ])
    }

    /// The wall-clock seconds `tool arguments` took; a failure names the command.
    static func timed(_ tool: String, _ arguments: [String]) throws -> Double {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let start = ContinuousClock.now
        try process.run()
        process.waitUntilExit()
        let elapsed = ContinuousClock.now - start
        guard process.terminationStatus == 0 else {
            throw ValidationError("\(tool) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus)")
        }
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    static func median(_ values: [Double]) -> Double { values.isEmpty ? 0 : values.sorted()[values.count / 2] }

    static func which(_ name: String) -> String? {
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin"
        return (path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"]).map { "\($0)/\(name)" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// `bytes` of random data, which every run of this process copies.
    static func randomFile(_ url: URL, bytes: Int) throws {
        var generator = SystemRandomNumberGenerator()
        var data = Data(count: bytes)
        data.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for i in words.indices { words[i] = generator.next() }
        }
        try data.write(to: url)
    }
}

/// A server child started under `setpriv --pdeathsig KILL` (which becomes the server), its
/// standard output to `output`, ready once its socket exists, stopped with SIGTERM (then SIGKILL
/// after 10 s) and waited for.
final class ChildServer {
    let socket: String
    private let process = Process()

    init(_ setpriv: String, _ command: [String], socket: String, output: URL) throws {
        self.socket = socket
        process.executableURL = URL(fileURLWithPath: setpriv)
        process.arguments = ["--pdeathsig", "KILL", "--"] + command
        guard FileManager.default.createFile(atPath: output.path, contents: nil), let out = FileHandle(forWritingAtPath: output.path) else {
            throw ValidationError("cannot create \(output.path)")
        }
        process.standardOutput = out
        try process.run()
        let deadline = ContinuousClock.now + .seconds(30)
        while !FileManager.default.fileExists(atPath: socket) {
            guard process.isRunning, ContinuousClock.now < deadline else {
                stop()
                throw ValidationError("\(command.joined(separator: " ")) did not create \(socket) within 30 s")
            }
            usleep(20_000)
        }
    }

    /// The CPU time (user and system) the running server has used, from /proc/PID/stat; 0 once
    /// it has ended.
    func cpuSeconds() -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        // After "pid (comm)": state is field 3, utime 14 and stime 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = ContinuousClock.now + .seconds(10)
        while process.isRunning && ContinuousClock.now < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}
