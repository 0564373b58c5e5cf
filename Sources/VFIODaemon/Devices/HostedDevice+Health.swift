import Logging
import VFIOKit

extension HostedDevice {
    /// Logs each critical warning a driver reports, at `critical`, with the health around it;
    /// warnings already in force when the driver started are logged at once.
    static func logCriticalWarnings(of driver: any HealthReportingDriver, logger: Logger) {
        let log: @Sendable (DeviceHealth, String) -> Void = { health, what in
            logger.critical("critical warning: \(health.criticalWarnings.joined(separator: ", ")) (\(what))", metadata: metadata(health))
        }
        driver.setCriticalWarningHandler(log)
        if let health = driver.health, !health.criticalWarnings.isEmpty { log(health, "in force at start") }
    }

    private static func metadata(_ health: DeviceHealth) -> Logger.Metadata {
        var m: Logger.Metadata = [:]
        if let k = health.temperatureKelvin { m["temperature_celsius"] = "\(k - 273)" }
        if let s = health.availableSparePercent { m["available_spare_percent"] = "\(s)" }
        if let e = health.mediaErrors { m["media_errors"] = "\(e)" }
        if let e = health.errorLogEntries { m["error_log_entries"] = "\(e)" }
        return m
    }
}
