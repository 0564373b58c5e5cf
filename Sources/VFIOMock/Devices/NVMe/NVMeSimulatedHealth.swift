/// What a simulated ``NVMeController`` reports in its SMART / Health Information log page
/// (02h), settable with ``NVMeController/setHealth(_:)``. The I/O counters (data units and
/// commands read and written) and the error count are the controller's own, from what it ran.
public struct NVMeSimulatedHealth: Sendable, Equatable {
    /// Critical Warning bits (0 spare below threshold, 1 temperature, 2 reliability degraded,
    /// 3 read only, 4 volatile memory backup failed).
    public var criticalWarning: UInt8 = 0
    /// Composite temperature in kelvin (310 K is 37 °C); the sensor 1 reading is the same.
    public var temperature: UInt16 = 310
    /// Percent of the spare capacity left, and the threshold under which that is critical.
    public var availableSpare: UInt8 = 100
    /// Available Spare Threshold, in percent. Only reported: the model never sets Critical
    /// Warning bit 0 from it (``NVMeController/raiseCriticalWarning(_:)`` does).
    public var availableSpareThreshold: UInt8 = 10
    /// Percentage Used: an estimate of the life used, in percent (may exceed 100).
    public var percentageUsed: UInt8 = 3
    /// Controller Busy Time, in minutes.
    public var controllerBusyTime: UInt64 = 0
    /// Power Cycles.
    public var powerCycles: UInt64 = 12
    /// Power On Hours.
    public var powerOnHours: UInt64 = 1_024
    /// Unsafe Shutdowns.
    public var unsafeShutdowns: UInt64 = 1
    /// Media and data integrity errors before this run; each injected media error adds one.
    public var mediaErrors: UInt64 = 0
    /// Warning Composite Temperature Time, in minutes.
    public var warningTemperatureTime: UInt32 = 0
    /// Critical Composite Temperature Time, in minutes.
    public var criticalTemperatureTime: UInt32 = 0

    /// A healthy drive: no warnings, 310 K, all spare left, 3% used.
    public init() {}
}

/// Fault injection and asynchronous event state of the engine, beside the register file.
struct NVMeEngineHealth {
    struct ErrorEntry {
        var count: UInt64
        var queue: UInt16
        var commandID: UInt16
        var status: UInt16
        var lba: UInt64
        var namespaceID: UInt32
    }

    enum Fault {
        case status(UInt16, doNotRetry: Bool)
        case fatal
    }

    var values = NVMeSimulatedHealth()
    /// 512-byte units moved, and commands run, for the host.
    var unitsRead: UInt64 = 0
    var unitsWritten: UInt64 = 0
    var hostReads: UInt64 = 0
    var hostWrites: UInt64 = 0
    /// Error Information entries, newest first (at most ``errorLogEntries``), and the total.
    var errors: [ErrorEntry] = []
    var errorCount: UInt64 = 0
    /// Asynchronous Event Requests held (their command ids), events not yet reported, and the
    /// event types reported whose log page (the value) has not been read since.
    var eventRequests: [UInt16] = []
    var pendingEvents: [UInt32] = []
    var maskedTypes: [UInt8: UInt8] = [:]
    var changedNamespaces: [UInt32] = []
    /// Set Features 0Bh: bits 7:0 SMART critical warnings, bit 8 namespace attribute notices.
    var eventConfiguration: UInt32 = 0

    /// Injected: the next `failures.count` I/O commands (of `opcode`, any when nil) complete
    /// with `status`; CFS is set on the I/O command after `fatalAfter` more; `permanent`: a
    /// reset does not clear CFS and the controller never becomes ready again.
    var failures: (count: Int, status: UInt16, doNotRetry: Bool, retryDelay: UInt8, opcode: UInt8?) = (0, 0, false, 0, nil)
    var fatalAfter: Int?
    var permanent = false
    /// Host Behavior Support (Set Features 16h) byte 0 bit 0: Advanced Command Retry Enable, so
    /// failures carry their Command Retry Delay. A controller level reset clears it.
    var advancedCommandRetry = false
    /// The controller is gone: its registers read all ones and it services nothing.
    var removed = false
    /// An injected reset: the registers read all ones until `unreachableUntil` (then are at
    /// their power-on values), and RDY does not rise before `readyNotBefore`.
    var unreachableUntil: ContinuousClock.Instant?
    var readyNotBefore: ContinuousClock.Instant?

    static let errorLogEntries = 64
    /// AERL: four requests outstanding at most.
    static let eventRequestLimit = 4
}
