import VFIOKit

/// The controller's health for a host: the SMART / Health log, read at bring-up, on every
/// SMART / Health event and every ``Configuration/healthInterval`` on the control thread.
extension NVMeDriver: HealthReportingDriver {
    public var health: DeviceHealth? {
        supervision.events.withLock { $0.smart }.map { log in
            DeviceHealth(
                temperatureKelvin: Int(log.temperature), availableSparePercent: Int(log.availableSpare),
                availableSpareThresholdPercent: Int(log.availableSpareThreshold), mediaErrors: log.mediaErrors,
                errorLogEntries: log.errorLogEntries, criticalWarnings: log.criticalWarnings)
        }
    }

    public func setCriticalWarningHandler(_ handler: (@Sendable (DeviceHealth, String) -> Void)?) {
        supervision.events.withLock { $0.warningHandler = handler }
    }

    /// Reads the SMART log now (a failed read keeps the last one).
    func refreshHealth(because reason: String) {
        guard let log = try? smartLog() else { return }
        recordHealth(log, because: reason)
    }

    /// On the control thread's tick: reads the SMART log when the last read is old enough.
    func refreshHealthIfDue() {
        guard supervision.ready.load(ordering: .acquiring), failureEpoch == 0,
            !supervision.recovering.load(ordering: .acquiring)
        else { return }
        let last = supervision.events.withLock { $0.smartReadAt }
        if let last, ContinuousClock.now - last < configuration.healthInterval { return }
        refreshHealth(because: "periodic SMART / Health read")
    }

    /// Keeps `log`; tells the handler when a critical warning came on since the last read.
    func recordHealth(_ log: NVMeSMARTLog, because reason: String) {
        let (previous, handler) = supervision.events.withLock { e in
            defer {
                e.smart = log
                e.smartReadAt = .now
            }
            return (e.smart?.criticalWarning ?? 0, e.warningHandler)
        }
        guard log.criticalWarning & ~previous != 0, let handler, let health else { return }
        handler(health, reason)
    }
}
