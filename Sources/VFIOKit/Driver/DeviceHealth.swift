/// A device's health as its driver last read it (for storage, the SMART / Health log): what a
/// host logs and exports as metrics. Fields a device does not report are nil.
public struct DeviceHealth: Sendable, Equatable, Codable {
    /// The device's temperature in kelvin (NVMe reports its composite temperature so).
    public var temperatureKelvin: Int?
    /// Spare capacity left, and the level under which the device calls it critical, in percent.
    public var availableSparePercent: Int?
    /// The ``availableSparePercent`` under which the device reports a critical warning.
    public var availableSpareThresholdPercent: Int?
    /// Unrecovered data integrity errors over the device's life.
    public var mediaErrors: UInt64?
    /// Entries the device added to its error log over its life.
    public var errorLogEntries: UInt64?
    /// The critical warnings in force, described; empty when there are none.
    public var criticalWarnings: [String]

    /// A reading with the given fields; those left out are ones the device does not report.
    public init(
        temperatureKelvin: Int? = nil, availableSparePercent: Int? = nil, availableSpareThresholdPercent: Int? = nil,
        mediaErrors: UInt64? = nil, errorLogEntries: UInt64? = nil, criticalWarnings: [String] = []
    ) {
        self.temperatureKelvin = temperatureKelvin
        self.availableSparePercent = availableSparePercent
        self.availableSpareThresholdPercent = availableSpareThresholdPercent
        self.mediaErrors = mediaErrors
        self.errorLogEntries = errorLogEntries
        self.criticalWarnings = criticalWarnings
    }
}

/// A driver that reads its device's health: a host shows ``health`` in its status and metrics
/// and is told, through the handler, when a critical warning comes on.
public protocol HealthReportingDriver: PCIDriver {
    /// The health last read; nil before the first read. Never waits for the device.
    var health: DeviceHealth? { get }
    /// Calls `handler` (on a driver thread; it must not block) with the health and what
    /// happened each time a critical warning comes on; nil stops.
    func setCriticalWarningHandler(_ handler: (@Sendable (DeviceHealth, String) -> Void)?)
}
