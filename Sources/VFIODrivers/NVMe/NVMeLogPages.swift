/// Log page identifiers the driver reads (NVMe base specification, "Get Log Page").
public enum NVMeLogPage {
    public static let errorInformation: UInt8 = 0x01
    public static let smartHealth: UInt8 = 0x02
    public static let changedNamespaceList: UInt8 = 0x04
}

/// The SMART / Health Information log page (02h, 512 bytes), controller-wide.
public struct NVMeSMARTLog: Sendable, Equatable, Codable {
    /// Critical Warning bits: 0 spare below threshold, 1 temperature outside a threshold,
    /// 2 reliability degraded, 3 media read only, 4 volatile memory backup failed, 5 PMR read only.
    public var criticalWarning: UInt8
    /// Composite temperature, kelvin.
    public var temperature: UInt16
    /// Available spare capacity, percent, and the threshold under which it is critical.
    public var availableSpare: UInt8
    public var availableSpareThreshold: UInt8
    /// Estimate of the endurance used, percent (may exceed 100).
    public var percentageUsed: UInt8
    public var enduranceGroupCriticalWarningSummary: UInt8
    /// Thousands of 512-byte units read and written by the host.
    public var dataUnitsRead: UInt64
    public var dataUnitsWritten: UInt64
    public var hostReadCommands: UInt64
    public var hostWriteCommands: UInt64
    /// Minutes the controller was busy with I/O.
    public var controllerBusyTime: UInt64
    public var powerCycles: UInt64
    public var powerOnHours: UInt64
    public var unsafeShutdowns: UInt64
    /// Unrecovered data integrity errors.
    public var mediaErrors: UInt64
    /// Error Information log entries over the controller's life.
    public var errorLogEntries: UInt64
    /// Minutes above the warning and critical composite temperature thresholds.
    public var warningTemperatureTime: UInt32
    public var criticalTemperatureTime: UInt32
    /// Temperature sensors 1–8, kelvin; 0 where there is no sensor.
    public var temperatureSensors: [UInt16]
    public var thermalTransitionCounts: [UInt32]
    public var thermalTransitionTimes: [UInt32]

    /// Parses the 512-byte page. 128-bit counters saturate at `UInt64.max`.
    public init(page: UnsafeRawBufferPointer) {
        precondition(page.count >= 512, "a SMART / Health log page is 512 bytes")
        func u8(_ o: Int) -> UInt8 { page[o] }
        func u16(_ o: Int) -> UInt16 { page.loadUnaligned(fromByteOffset: o, as: UInt16.self) }
        func u32(_ o: Int) -> UInt32 { page.loadUnaligned(fromByteOffset: o, as: UInt32.self) }
        func u128(_ o: Int) -> UInt64 {
            page.loadUnaligned(fromByteOffset: o + 8, as: UInt64.self) != 0 ? .max : page.loadUnaligned(fromByteOffset: o, as: UInt64.self)
        }
        criticalWarning = u8(0)
        temperature = u16(1)
        availableSpare = u8(3)
        availableSpareThreshold = u8(4)
        percentageUsed = u8(5)
        enduranceGroupCriticalWarningSummary = u8(6)
        dataUnitsRead = u128(32)
        dataUnitsWritten = u128(48)
        hostReadCommands = u128(64)
        hostWriteCommands = u128(80)
        controllerBusyTime = u128(96)
        powerCycles = u128(112)
        powerOnHours = u128(128)
        unsafeShutdowns = u128(144)
        mediaErrors = u128(160)
        errorLogEntries = u128(176)
        warningTemperatureTime = u32(192)
        criticalTemperatureTime = u32(196)
        temperatureSensors = (0..<8).map { u16(200 + 2 * $0) }
        thermalTransitionCounts = [u32(216), u32(220)]
        thermalTransitionTimes = [u32(224), u32(228)]
    }

    /// The critical warnings set, by the spec's description.
    public var criticalWarnings: [String] {
        let names = [
            "available spare below threshold", "temperature outside a threshold", "NVM subsystem reliability degraded",
            "media placed in read-only mode", "volatile memory backup device failed", "persistent memory region read-only",
        ]
        return names.indices.filter { criticalWarning & (1 << $0) != 0 }.map { names[$0] }
    }

    /// Composite temperature in degrees Celsius.
    public var celsius: Int { Int(temperature) - 273 }
}

/// One Error Information log entry (01h, 64 bytes each).
public struct NVMeErrorLogEntry: Sendable, Equatable, Codable {
    /// Unique and increasing over the controller's life; 0 marks an unused entry.
    public var errorCount: UInt64
    public var submissionQueueID: UInt16
    public var commandID: UInt16
    /// The failed command's status field (bits 15:1 of the entry's word; bit 0 is the phase).
    public var statusField: UInt16
    public var phaseTag: Bool
    /// Byte (7:0) and bit (10:8) of the command field in error; 0xffff when not applicable.
    public var parameterErrorLocation: UInt16
    public var lba: UInt64
    public var namespaceID: UInt32
    public var vendorSpecificLogPage: UInt8
    public var transportType: UInt8
    public var commandSpecific: UInt64
    public var transportTypeSpecific: UInt16

    public init(entry: UnsafeRawBufferPointer) {
        precondition(entry.count >= 64, "an Error Information log entry is 64 bytes")
        errorCount = entry.loadUnaligned(fromByteOffset: 0, as: UInt64.self)
        submissionQueueID = entry.loadUnaligned(fromByteOffset: 8, as: UInt16.self)
        commandID = entry.loadUnaligned(fromByteOffset: 10, as: UInt16.self)
        let status = entry.loadUnaligned(fromByteOffset: 12, as: UInt16.self)
        statusField = status >> 1
        phaseTag = status & 1 != 0
        parameterErrorLocation = entry.loadUnaligned(fromByteOffset: 14, as: UInt16.self)
        lba = entry.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
        namespaceID = entry.loadUnaligned(fromByteOffset: 24, as: UInt32.self)
        vendorSpecificLogPage = entry[28]
        transportType = entry[29]
        commandSpecific = entry.loadUnaligned(fromByteOffset: 32, as: UInt64.self)
        transportTypeSpecific = entry.loadUnaligned(fromByteOffset: 40, as: UInt16.self)
    }

    /// The failed command's status, decoded.
    public var status: NVMeStatus { NVMeStatus(field: statusField) }

    /// The entries of an Error Information log page, newest first as the controller keeps them;
    /// unused entries (error count 0) are left out.
    public static func entries(page: UnsafeRawBufferPointer) -> [NVMeErrorLogEntry] {
        stride(from: 0, to: page.count - 63, by: 64)
            .map { NVMeErrorLogEntry(entry: UnsafeRawBufferPointer(rebasing: page[$0..<$0 + 64])) }
            .filter { $0.errorCount != 0 }
    }
}

/// The Changed Namespace List log page (04h): the namespaces whose Identify Namespace data
/// changed since it was last read, or `overflowed` when more than 1,024 did.
public struct NVMeChangedNamespaceList: Sendable, Equatable, Codable {
    public var namespaceIDs: [UInt32]
    public var overflowed: Bool

    public init(page: UnsafeRawBufferPointer) {
        let ids = (0..<min(1024, page.count / 4)).lazy.map { page.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self) }.prefix {
            $0 != 0
        }
        overflowed = ids.first == 0xffff_ffff
        namespaceIDs = overflowed ? [] : Array(ids)
    }
}
