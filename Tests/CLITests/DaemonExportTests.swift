import Foundation
import Testing

/// `vfiokit run --simulated-nvme` and `--export`: the simulated controller served over NBD to
/// libnbd's tools, its counters in `vfiokit status` and the Prometheus text, SIGTERM with a
/// client connected, and bad export specifications refused.
@Suite("vfiokit run --export", .serialized)
struct DaemonExportTests {
    /// Short (a Unix socket path holds at most 107 bytes).
    let stateDirectory = "/tmp/vfiokit-export-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    var environment: [String: String] { ["VFIOKIT_STATE_DIR": stateDirectory] }

    /// Runs `tool` with `arguments`; its status and standard output.
    func run(_ tool: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/" + tool)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// The first export in `vfiokit status --json`.
    func exportStatus() throws -> [String: Any]? {
        let result = try runVFIOKit(["status", "--json"], environment: environment)
        let json = try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
        let devices = json?["devices"] as? [[String: Any]] ?? []
        return devices.compactMap { ($0["exports"] as? [[String: Any]])?.first }.first
    }

    @Test(
        "--simulated-nvme prints the nbd+unix URI; nbdinfo and an nbdcopy round trip through it; status and metrics count it; SIGTERM with a client connected disconnects it in order"
    )
    func simulatedControllerServedOverNBD() throws {
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: stateDirectory) }
        let daemon = try BackgroundVFIOKit(["run", "--simulated-nvme"], environment: environment)
        let socket = stateDirectory + "/nbd-0000-00-05.0-ns1.sock"
        let uri = "nbd+unix:///?socket=\(socket)"
        #expect(
            eventually { daemon.output.contains("export nbd namespace 1 of 0000:00:05.0: \(uri)\n") }, "\(daemon.output)\(daemon.error)")

        let info = try run("nbdinfo", ["--json", uri])
        #expect(info.status == 0)
        #expect(info.output.contains("\"export-size\": \(256 << 20)"), "\(info.output)")

        let source = stateDirectory + "/source", back = stateDirectory + "/back"
        var bytes = [UInt8](repeating: 0, count: 4 << 20)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 13) }
        try Data(bytes).write(to: URL(fileURLWithPath: source))
        #expect(try run("nbdcopy", [source, uri]).status == 0)
        #expect(try run("nbdcopy", [uri, back]).status == 0)
        let copied = try Data(contentsOf: URL(fileURLWithPath: back))
        #expect(copied.prefix(4 << 20) == Data(bytes), "the bytes read back are those written")

        let export = try #require(try exportStatus())
        #expect(export["kind"] as? String == "nbd" && export["target"] as? String == uri)
        let detail = try #require(export["detail"] as? [String: Any])
        #expect((detail["bytesWritten"] as? Int ?? 0) >= 4 << 20, "\(detail)")
        #expect((detail["bytesRead"] as? Int ?? 0) >= 256 << 20, "nbdcopy read the whole export: \(detail)")
        #expect((detail["connections"] as? Int ?? 0) >= 3 && detail["errors"] as? Int == 0, "\(detail)")
        let text = try runVFIOKit(["status"], environment: environment).output
        #expect(text.contains("export nbd namespace 1: \(uri)"), "\(text)")
        let metrics = try runVFIOKit(["status", "--metrics"], environment: environment).output
        let written = metrics.split(separator: "\n").first {
            $0.hasPrefix("vfiokit_export_bytes_total{") && $0.contains(#"kind="write""#) && $0.contains(#"device="0000:00:05.0""#)
        }
        #expect(written.flatMap { $0.split(separator: " ").last.flatMap { Int($0) } }.map { $0 >= 4 << 20 } == true, "\(metrics)")

        // A client in transmission when SIGTERM comes: it is disconnected, the daemon exits 0.
        let client = try RawNBDSocket(socket, timeout: 20)
        #expect(client.enterTransmission())
        #expect(eventually { (try? exportStatus())?["detail"].flatMap { ($0 as? [String: Any])?["clients"] as? Int } == 1 })

        #expect(daemon.stop(SIGTERM) == 0, "\(daemon.error)")
        #expect(client.receive(1) == nil, "the client was disconnected")
        #expect(access(socket, F_OK) != 0, "the socket is gone")
        #expect(daemon.error.contains("stopped the nbd export of namespace 1"), "\(daemon.error)")
        #expect(
            daemon.error.contains(
                "simulated kernel after shutdown: 0 DMA mappings, interrupts none enabled, 0 open files, driver vfio-pci, device 0000:00:05.0"
            ), "\(daemon.error)")
    }

    @Test(arguments: [
        (["run", "0000:00:05.0", "--export", "nfs"], "\"nfs\" is not an export protocol"),
        (["run", "0000:00:05.0", "--export", "nbd:0.0.0.0:10809"], "loopback only"),
        (["run", "0000:00:05.0", "--export", "nbd,namespace=0"], "\"0\" is not a namespace ID"),
        (["run", "0000:00:05.0", "--export", "ublk:/dev/x"], "ublk takes no socket"),
        (["run", "0000:00:05.0", "--read-only"], "--read-only applies to --export"),
        (["run", "0000:00:05.0", "0000:00:06.0", "--export", "nbd"], "give exactly one ADDRESS"),
        (["run", "--export", "nbd"], "give exactly one ADDRESS (or --simulated-nvme)"),
        (["run", "--simulated-nvme", "--isolate"], "drop --isolate"),
        (["run", "0000:00:05.0", "--simulated-nvme"], "--simulated-nvme is for a run with no device"),
    ])
    func badExportSpecificationsAreRefusedNamingWhatIsWrong(arguments: [String], reason: String) throws {
        defer { try? FileManager.default.removeItem(atPath: stateDirectory) }
        let result = try runVFIOKit(arguments, environment: environment)
        #expect(result.status != 0)
        #expect(result.error.contains(reason), "\(result.error)")
    }
}
