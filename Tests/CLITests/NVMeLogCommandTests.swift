import Foundation
import Testing

/// `vfiokit nvme smart-log` and `error-log` on the simulated controller: nvme-cli's shapes.
@Suite struct NVMeLogCommandTests {
    /// nvme-cli's SMART keys, with the simulated controller's defaults.
    static let smartDefaults: [(key: String, value: Int)] = [
        ("critical_warning", 0), ("temperature", 310), ("avail_spare", 100), ("spare_thresh", 10), ("percent_used", 3),
        ("power_cycles", 12), ("power_on_hours", 1024), ("media_errors", 0), ("num_err_log_entries", 0),
    ]

    @Test func smartLogPrintsTheControllersHealthAsJSON() throws {
        let result = try runVFIOKit(["nvme", "smart-log", "--simulated", "--json"])
        #expect(result.status == 0, "stderr: \(result.error)")
        let log = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
        for (key, value) in Self.smartDefaults { #expect(log[key] as? Int == value, "\(key)") }
        #expect(log["temperature_sensors"] as? [Int] == [310])
    }

    @Test func smartLogTextIsShapedLikeNVMeCLIs() throws {
        let result = try runVFIOKit(["nvme", "smart-log", "--simulated"])
        #expect(result.status == 0, "stderr: \(result.error)")
        let lines = result.output.split(separator: "\n").map(String.init)
        #expect(lines.first == "Smart Log for NVME device:simulated namespace-id:ffffffff")
        #expect(lines.contains { $0.hasPrefix("temperature ") && $0.hasSuffix(": 37 °C (310 K)") })
        #expect(lines.contains { $0.hasPrefix("available_spare ") && $0.hasSuffix(": 100%") })
        #expect(lines.contains { $0.hasPrefix("num_err_log_entries ") && $0.hasSuffix(": 0") })
        // The colons line up.
        let columns = Set(lines.dropFirst().map { $0.prefix { $0 != ":" }.count })
        #expect(columns.count == 1)
    }

    @Test func errorLogOfAFreshControllerIsEmpty() throws {
        let json = try runVFIOKit(["nvme", "error-log", "--simulated", "--json"])
        #expect(json.status == 0, "stderr: \(json.error)")
        #expect(json.output.contains("\"errors\" : ["))
        let text = try runVFIOKit(["nvme", "error-log", "--simulated"])
        #expect(text.output.hasPrefix("Error Log Entries for device:simulated entries:0"))
        let bad = try runVFIOKit(["nvme", "error-log", "--simulated", "--entries", "65"])
        #expect(bad.status != 0)
        #expect(bad.error.contains("--entries 65 is outside 1…64"))
    }
}
