import FoundationEssentials
import Testing
import TestSupport
@testable import VFIODaemon
import VFIODrivers
import VFIOKit
import VFIOMock

/// A hosted NVMe controller's health: critical warnings logged as they come on, and the SMART
/// figures in the status and the metrics.
@Suite struct DeviceHealthTests {
    /// The lines logged at `critical`, with their metadata.
    func criticalLines(_ logs: CapturedLogs) -> [String] { logs.all.filter { $0.level == .critical }.map(\.line) }

    @Test func aCriticalWarningIsLoggedAndTheHealthIsExported() throws {
        let machine = try DaemonMachine(edu: [])
        defer { machine.removeStateDirectory() }
        let controller = NVMeController(namespaces: [NVMeNamespace(blockCount: 1024)])
        controller.setHealth { h in
            h.temperature = 318
            h.mediaErrors = 4
        }
        try machine.kernel.plug(controller, at: first, driver: .vfioPCI)
        let logs = CapturedLogs()
        let configuration = DaemonConfiguration(
            devices: [.init(address: first, driver: "nvme")], bind: false, stateDirectory: machine.stateDirectory, workInterval: .milliseconds(1))
        let host = try DriverHost(
            configuration: configuration, system: machine.kernel, simulated: true,
            logger: logs.logger())
        try host.start()
        defer { host.shutdown() }
        #expect(eventually { host.device(first)?.health != nil })
        #expect(criticalLines(logs).isEmpty)
        let health = try #require(host.device(first)?.health)
        #expect(health.temperatureKelvin == 318)
        #expect(health.mediaErrors == 4)
        #expect(health.criticalWarnings == [])
        let textLines = host.status().text.split(separator: "\n")
        #expect(textLines.contains { $0.hasPrefix("    health: temperature 45 °C, spare ") && $0.contains("media errors 4") && $0.hasSuffix("critical warnings: none") },
                "\(textLines)")

        controller.setHealth { $0.availableSpare = 4 }
        controller.raiseCriticalWarning(1)
        #expect(eventually { !criticalLines(logs).isEmpty })
        let line = try #require(criticalLines(logs).first)
        #expect(line.contains("critical warning: available spare below threshold (asynchronous event: SMART / health: spare below threshold)"))
        #expect(line.contains("available_spare_percent=4"))
        #expect(line.contains("device=\(first)"))

        #expect(host.status().text.contains("critical warnings: available spare below threshold"))

        let metrics = DaemonMetrics()
        metrics.update(host.status())
        let text = metrics.text()
        let labels = #"{device="\#(first)",driver="nvme"}"#
        #expect(text.contains("vfiokit_device_temperature_celsius\(labels) 44.85"))
        #expect(text.contains("vfiokit_device_available_spare_ratio\(labels) 0.04"))
        #expect(text.contains("vfiokit_device_critical_warnings\(labels) 1"))
        #expect(text.contains("vfiokit_device_media_errors_total\(labels) 4"))
        #expect(text.contains("vfiokit_device_error_log_entries_total\(labels) 0"))
    }
}
