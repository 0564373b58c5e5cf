import Foundation
import Testing

/// `vfiokit run --config` and `--check-config` refuse a wrong file naming it and what is wrong;
/// `--metrics-address` is checked before any device is touched.
@Suite struct DaemonConfigurationCommandTests {
    let stateDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("vfiokit-state-\(UUID().uuidString)").path
    var environment: [String: String] { ["VFIOKIT_STATE_DIR": stateDirectory] }

    func write(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vfiokit-config-\(UUID().uuidString).json").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test(arguments: [
        (#"{"devics": [{"address": "0000:00:03.0"}]}"#, #"unknown key "devics" at the top level (did you mean "devices"?)"#),
        (#"{"devices": [{"address": "0000:00:03.0", "drivr": "edu"}]}"#, #"unknown key "drivr" in devices[0] (did you mean "driver"?)"#),
        (
            #"{"devices": [{"address": "0000:00:03.0", "colour": "red"}]}"#,
            #"unknown key "colour" in devices[0]; the keys there are address, driver, context"#
        ),
        ("{\n  \"devices\": [\n    {\"address\": \"0000:00:03.0\"}\n  \n", "line 5, column 1: expected a comma or a closing bracket"),
    ])
    func aWrongFileIsRefusedByRunAndCheckConfig(_ text: String, _ complaint: String) throws {
        let path = try write(text)
        defer { try? FileManager.default.removeItem(atPath: path) }
        for arguments in [["run", "--check-config", path], ["run", "--config", path, "--stats-interval", "0"]] {
            let result = try runVFIOKit(arguments, environment: environment)
            #expect(result.status == 1)
            #expect(result.error.contains("the configuration \(path) is not usable: \(complaint)"), "stderr: \(result.error)")
        }
    }

    @Test func aMissingFileSaysWhy() throws {
        let result = try runVFIOKit(["run", "--config", "/nonexistent/daemon.json"], environment: environment)
        #expect(result.status == 1)
        #expect(result.error.contains("cannot read /nonexistent/daemon.json: No such file or directory"), "stderr: \(result.error)")
    }

    @Test func checkConfigValidatesWithoutTouchingADevice() throws {
        let path = SystemdUnitTests.repository.appendingPathComponent("systemd/daemon.json").path
        let result = try runVFIOKit(["run", "--check-config", path], environment: environment)
        #expect(result.status == 0, "stderr: \(result.error)")
        #expect(result.output == "\(path): valid; 2 devices (0000:00:03.0, 0000:00:05.0)\n")
        #expect(!FileManager.default.fileExists(atPath: stateDirectory), "it took the daemon lock")
        let unknownDriver = try write(#"{"devices": [{"address": "0000:00:03.0", "driver": "nope"}]}"#)
        defer { try? FileManager.default.removeItem(atPath: unknownDriver) }
        let refused = try runVFIOKit(["run", "--check-config", unknownDriver], environment: environment)
        #expect(refused.status == 1 && refused.error.contains("unknown driver \"nope\""), "stderr: \(refused.error)")
    }

    /// Refused up front: exit status, the complaint, and no banner (nothing was opened).
    func expectRefusedUpFront(_ address: [String], _ complaint: String) throws {
        let result = try runVFIOKit(["run", "--stats-interval", "0", "--metrics-address"] + address, environment: environment)
        #expect(result.status != 0)
        #expect(result.error.contains(complaint), "stderr: \(result.error)")
        // No banner and no device started: nothing was opened before the refusal.
        #expect(
            !result.error.contains("SIMULATED") && !result.output.contains("SIMULATED") && !result.error.contains("started"),
            "stderr: \(result.error)")
    }

    @Test func metricsAddressesAreCheckedBeforeAnyDevice() throws {
        try expectRefusedUpFront(["localhost:9464"], "wants an IPv4 address, not the name \"localhost\"")
        try expectRefusedUpFront(
            ["192.0.2.1:9464"], "is not loopback, and the metrics endpoint has no authentication: add --metrics-public")
        try expectRefusedUpFront(["192.0.2.1:9464", "--metrics-public"], "cannot serve metrics on 192.0.2.1:9464")
        // A port in use: this test holds it.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 1) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        #expect(bound)
        try expectRefusedUpFront(["127.0.0.1:\(UInt16(bigEndian: address.sin_port))"], "Address already in use")
    }
}
