import Foundation
import Testing

/// `vfiokit run --isolate` on simulated devices, each worker process with a mock kernel of its
/// own, and the VFIOKIT_FAULT_TRAP seam making one driver trap.
@Suite(.serialized) struct IsolatedDaemonTests {
    let stateDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("vfiokit-isolate-\(UUID().uuidString)").path
    /// The Swift runtime's crash handler is turned off for the trapping runs: under
    /// ThreadSanitizer it crashes itself handling the trap, and the process ends by SIGSEGV.
    static let noBacktrace = ["SWIFT_BACKTRACE": "enable=no"]

    /// The devices `vfiokit status --json` reports by address; empty while no daemon answers.
    func devices(_ environment: [String: String]) throws -> [String: [String: Any]] {
        let result = try runVFIOKit(["status", "--json"], environment: environment)
        guard result.status == 0, let json = try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any],
            let devices = json["devices"] as? [[String: Any]]
        else { return [:] }
        return Dictionary(devices.map { ($0["address"] as? String ?? "", $0) }) { a, _ in a }
    }

    func interrupts(_ device: [String: Any]?) -> Int {
        (device?["interrupts"] as? [[String: Any]] ?? []).reduce(0) { $0 + ($1["count"] as? Int ?? 0) }
    }

    /// The pids of processes whose command line names `text` (the state directory names a daemon's workers).
    func processes(naming text: String) -> [Int32] {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return pids.compactMap(Int32.init).filter { commandLine(of: $0).contains(text) }
    }

    /// `/proc/PID/cmdline` with spaces between the arguments, read with read(2): Foundation's
    /// `Data(contentsOf:)` leaks its buffer for a file whose size stat gives as 0, as procfs does.
    func commandLine(of pid: Int32) -> String {
        let fd = open("/proc/\(pid)/cmdline", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = read(fd, &buffer, buffer.count)
        return n > 0 ? String(decoding: buffer[..<n].map { $0 == 0 ? 32 : $0 }, as: UTF8.self) : ""
    }

    @Test func aTrappingDriverTakesDownOnlyItsWorkerAndShutdownStillRestoresEverything() throws {
        defer { try? FileManager.default.removeItem(atPath: stateDirectory) }
        let environment = ["VFIOKIT_STATE_DIR": stateDirectory, "VFIOKIT_FAULT_TRAP": "0000:00:05.0"].merging(Self.noBacktrace) { $1 }
        let daemon = try BackgroundVFIOKit(
            ["run", "--isolate", "--simulated-devices", "2", "--bind", "--work-interval", "1", "--stats-interval", "0"],
            environment: environment)

        var status: [String: [String: Any]] = [:]
        #expect(
            try eventually {
                status = try devices(environment); return status["0000:00:05.0"]?["state"] as? String == "failed"
            }, "stderr: \(daemon.error)")
        let trapped = try #require(status["0000:00:05.0"])
        let detail = try #require(trapped["detail"] as? String)
        #expect(
            detail.hasPrefix("driver ims-queue on 0000:00:05.0 trapped (SIGILL)")
                || detail.hasPrefix("driver ims-queue on 0000:00:05.0 trapped (SIGTRAP)"))
        #expect(detail.hasSuffix("its process ended and the kernel released the device"))
        #expect(trapped["driver"] as? String == "ims-queue")
        #expect(
            daemon.error.contains(
                "VFIOKIT_FAULT_TRAP=0000:00:05.0: driver ims-queue traps on its device's first interrupt (fault injection)"))
        #expect(daemon.error.contains("error vfiokit.daemon: [VFIODaemon] \(detail)"))

        // The other device, in the other worker, keeps running and counting interrupts.
        let survivor = try #require(status["0000:00:04.0"])
        #expect(survivor["state"] as? String == "running")
        #expect(survivor["context"] as? String != trapped["context"] as? String)
        let before = interrupts(survivor)
        #expect(try eventually { interrupts(try devices(environment)["0000:00:04.0"]) > before + 100 })
        let text = try runVFIOKit(["status"], environment: environment)
        #expect(text.output.contains("0000:00:05.0  ims-queue  failed: driver ims-queue on 0000:00:05.0 trapped (SIG"))
        #expect(processes(naming: stateDirectory + "/workers/").count == 1)

        #expect(daemon.stop() == 0, "stderr: \(daemon.error)")
        // The surviving worker shut its mock kernel's device down in order; the supervisor gave both bindings back.
        // Once per device: the worker's kernel held the device; the supervisor's only bound it.
        #expect(
            daemon.error.components(
                separatedBy:
                    "simulated kernel after shutdown: 0 DMA mappings, interrupts none enabled, 0 open files, driver vfio-pci, device 0000:00:04.0"
            ).count == 2)
        #expect(daemon.error.components(separatedBy: "device 0000:00:04.0\n").count == 2, "stderr: \(daemon.error)")
        for address in ["0000:00:04.0", "0000:00:05.0"] {
            #expect(daemon.error.contains("restored \(address) to pci-stub"))
        }
        // The trap is the one error: the surviving worker, asked to stop, exited 0.
        #expect(daemon.error.components(separatedBy: " error vfiokit.daemon:").count == 2, "stderr: \(daemon.error)")
        #expect(processes(naming: stateDirectory).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: stateDirectory + "/daemon-bindings.json"))
        #expect(!FileManager.default.fileExists(atPath: stateDirectory + "/workers"))
    }

    @Test func workersEndWhenTheirSupervisorIsKilled() throws {
        defer { try? FileManager.default.removeItem(atPath: stateDirectory) }
        let environment = ["VFIOKIT_STATE_DIR": stateDirectory]
        let daemon = try BackgroundVFIOKit(
            ["run", "--isolate", "--simulated-devices", "2", "--stats-interval", "0"], environment: environment)
        #expect(
            try eventually { try devices(environment).values.filter { $0["state"] as? String == "running" }.count == 2 },
            "stderr: \(daemon.error)")
        #expect(processes(naming: stateDirectory + "/workers/").count == 2)
        #expect(daemon.stop(SIGKILL) == SIGKILL)
        #expect(eventually { processes(naming: stateDirectory).isEmpty })
    }

    /// Without --isolate the drivers share the daemon's process: the seam's trap ends it all.
    @Test func withoutIsolationATrapEndsTheDaemon() throws {
        defer { try? FileManager.default.removeItem(atPath: stateDirectory) }
        let environment = ["VFIOKIT_STATE_DIR": stateDirectory, "VFIOKIT_FAULT_TRAP": "0000:00:04.0"].merging(Self.noBacktrace) { $1 }
        let daemon = try BackgroundVFIOKit(["run", "--work-interval", "1", "--stats-interval", "0"], environment: environment)
        try #require(eventually { !daemon.process.isRunning }, "stderr: \(daemon.error)")
        #expect(daemon.process.terminationReason == .uncaughtSignal)
        #expect([SIGILL, SIGTRAP].contains(daemon.process.terminationStatus))
        #expect(
            daemon.error.contains(
                "VFIOKIT_FAULT_TRAP=0000:00:04.0: driver ims-queue traps on its device's first interrupt (fault injection)"))
    }
}
