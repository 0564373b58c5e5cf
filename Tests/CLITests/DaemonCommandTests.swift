import Foundation
import Testing

/// `vfiokit run` as a daemon on the simulated device, and `vfiokit status` asking it.
@Suite(.serialized) struct DaemonCommandTests {
    let stateDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("vfiokit-state-\(UUID().uuidString)").path
    var environment: [String: String] { ["VFIOKIT_STATE_DIR": stateDirectory] }

    /// The status as JSON, once the daemon answers with a running device that has interrupted.
    func runningStatus() throws -> [String: Any]? {
        var status: [String: Any]?
        _ = try eventually {
            let result = try runVFIOKit(["status", "--json"], environment: environment)
            guard result.status == 0, let json = try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any],
                let devices = json["devices"] as? [[String: Any]], let device = devices.first,
                let vectors = device["interrupts"] as? [[String: Any]], vectors.contains(where: { ($0["count"] as? Int ?? 0) > 0 })
            else { return false }
            status = json
            return true
        }
        return status
    }

    @Test func runsTheSimulatedDeviceAnswersStatusAndLeavesNothingBehind() throws {
        defer { try? FileManager.default.removeItem(atPath: stateDirectory) }
        let daemon = try BackgroundVFIOKit(["run", "--bind", "--work-interval", "1"], environment: environment)
        let status = try #require(try runningStatus(), "stderr: \(daemon.error)")
        #expect(status["simulated"] as? Bool == true)
        let device = try #require((status["devices"] as? [[String: Any]])?.first)
        #expect(device["address"] as? String == "0000:00:04.0")
        #expect(device["driver"] as? String == "ims-queue")
        // Interrupts are counted per IMS slot group.
        let groups = try #require(device["interrupts"] as? [[String: Any]])
        #expect(groups.count == 4 && groups.allSatisfy { ($0["group"] as? String)?.hasPrefix("IMS slots") == true })
        #expect(device["state"] as? String == "running")

        let text = try runVFIOKit(["status"], environment: environment)
        #expect(text.output.contains("SIMULATED devices"))
        #expect(text.output.contains("0000:00:04.0  ims-queue  running"))
        let metrics = try runVFIOKit(["status", "--metrics"], environment: environment)
        #expect(
            metrics.output.contains(
                #"vfiokit_interrupts_total{device="0000:00:04.0",driver="ims-queue",group="IMS slots 0-3 on MSI-X 0",vector="IMS 0-3"}"#))
        #expect(metrics.output.contains(#"vfiokit_devices{state="running"} 1"#))

        let socket = stateDirectory + "/vfiokit.sock"
        let mode = try FileManager.default.attributesOfItem(atPath: socket)[.posixPermissions] as? Int
        #expect(mode == 0o660)

        #expect(daemon.stop() == 0, "stderr: \(daemon.error)")
        #expect(daemon.error.contains("SIMULATED: no device or config given"))
        #expect(
            daemon.error.contains("simulated kernel after shutdown: 0 DMA mappings, interrupts none enabled, 0 open files, driver pci-stub")
        )
        #expect(daemon.error.contains("restored 0000:00:04.0 to pci-stub"))
        let after = try runVFIOKit(["status"], environment: environment)
        #expect(after.status == 1)
        #expect(after.error.contains("no vfiokit daemon is running"))
    }

    @Test func aSecondDaemonIsRefusedNamingTheFirstsPid() throws {
        defer { try? FileManager.default.removeItem(atPath: stateDirectory) }
        let daemon = try BackgroundVFIOKit(["run"], environment: environment)
        _ = try #require(try runningStatus(), "stderr: \(daemon.error)")
        let second = try runVFIOKit(["run"], environment: environment)
        #expect(second.status != 0)
        #expect(second.error.contains("another vfiokit daemon (pid \(daemon.process.processIdentifier)) is running"))
        #expect(daemon.stop() == 0)
    }

    @Test func afterSIGKILLTheNextStartFinishesTheRestore() throws {
        defer { try? FileManager.default.removeItem(atPath: stateDirectory) }
        let killed = try BackgroundVFIOKit(["run", "--bind"], environment: environment)
        _ = try #require(try runningStatus(), "stderr: \(killed.error)")
        #expect(killed.stop(SIGKILL) == SIGKILL)
        #expect(FileManager.default.fileExists(atPath: stateDirectory + "/daemon-bindings.json"))
        let status = try runVFIOKit(["status"], environment: environment)
        #expect(status.status == 1)
        #expect(status.error.contains("a daemon was killed leaving devices bound"))

        // The simulated machine starts afresh (its device on pci-stub again); the journal on disk is what
        // the next daemon must find and finish. DriverHostTests checks the restore itself on one mock kernel.
        let next = try BackgroundVFIOKit(["run", "--bind"], environment: environment)
        _ = try #require(try runningStatus(), "stderr: \(next.error)")
        #expect(next.error.contains("a previous daemon (pid \(killed.process.processIdentifier)) stopped without restoring 1 devices"))
        #expect(next.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: stateDirectory + "/daemon-bindings.json"))
    }

    @Test func servesPrometheusMetricsOverHTTPWhenAsked() throws {
        defer { try? FileManager.default.removeItem(atPath: stateDirectory) }
        let port = Int.random(in: 20000...60000)
        let daemon = try BackgroundVFIOKit(["run", "--metrics-address", "127.0.0.1:\(port)"], environment: environment)
        _ = try #require(try runningStatus(), "stderr: \(daemon.error)")
        let response = try httpGet(port: port, path: "/metrics")
        #expect(response.hasPrefix("HTTP/1.0 200 OK"))
        #expect(response.contains("# TYPE vfiokit_interrupts_total counter"))
        #expect(try httpGet(port: port, path: "/other").hasPrefix("HTTP/1.0 404"))
        #expect(daemon.stop() == 0)
    }

    @Test func refusesBadInputNamingIt() throws {
        let driver = try runVFIOKit(["run", "--driver", "nope"], environment: environment)
        #expect(driver.status != 0)
        #expect(driver.error.contains("unknown driver \"nope\": the drivers are edu, ims-queue, nvme, nvme-verify, msix-loopback, stub"))
        let config = try runVFIOKit(["run", "--config", "/nonexistent/vfiokit.json"], environment: environment)
        #expect(config.status != 0)
        #expect(config.error.contains("cannot read /nonexistent/vfiokit.json: No such file or directory"))
        let metrics = try runVFIOKit(["run", "--metrics-address", "localhost"], environment: environment)
        #expect(metrics.error.contains("--metrics-address wants an IPv4 address and port such as 127.0.0.1:9464, not \"localhost\""))
        let simulated = try runVFIOKit(["run", "--simulated-devices", "0"], environment: environment)
        #expect(simulated.status != 0)
        #expect(simulated.error.contains("--simulated-devices wants 1 to 28 (the free device numbers of the simulated bus), not 0"))
    }

    /// One HTTP/1.0 GET on the loopback, the whole response as text.
    func httpGet(port: Int, path: String) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(connected == 0, "cannot connect to 127.0.0.1:\(port)")
        let request = "GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            response += chunk[..<n]
        }
        return String(decoding: response, as: UTF8.self)
    }
}
