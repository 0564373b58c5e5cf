import ArgumentParser
import CLIOutput
import Foundation
import VFIODrivers

/// `vfiokit nvme smart-log ADDRESS [--json]`: the SMART / Health Information log page, with
/// nvme-cli's field names.
struct NVMeSMARTLogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smart-log", abstract: "Print the SMART / Health Information log page (02h), as nvme-cli does.")

    @OptionGroup var target: NVMeTarget

    @Flag(help: "Print JSON (nvme-cli's keys; temperatures in kelvin).")
    var json = false

    /// nvme-cli's JSON shape.
    struct Report: Encodable {
        let critical_warning: UInt8
        let temperature: UInt16
        let avail_spare: UInt8
        let spare_thresh: UInt8
        let percent_used: UInt8
        let endurance_grp_critical_warning_summary: UInt8
        let data_units_read: UInt64
        let data_units_written: UInt64
        let host_read_commands: UInt64
        let host_write_commands: UInt64
        let controller_busy_time: UInt64
        let power_cycles: UInt64
        let power_on_hours: UInt64
        let unsafe_shutdowns: UInt64
        let media_errors: UInt64
        let num_err_log_entries: UInt64
        let warning_temp_time: UInt32
        let critical_comp_time: UInt32
        let temperature_sensors: [UInt16]
        let thm_temp1_trans_count: UInt32
        let thm_temp2_trans_count: UInt32
        let thm_temp1_total_time: UInt32
        let thm_temp2_total_time: UInt32

        init(_ log: NVMeSMARTLog) {
            critical_warning = log.criticalWarning
            temperature = log.temperature
            avail_spare = log.availableSpare
            spare_thresh = log.availableSpareThreshold
            percent_used = log.percentageUsed
            endurance_grp_critical_warning_summary = log.enduranceGroupCriticalWarningSummary
            data_units_read = log.dataUnitsRead
            data_units_written = log.dataUnitsWritten
            host_read_commands = log.hostReadCommands
            host_write_commands = log.hostWriteCommands
            controller_busy_time = log.controllerBusyTime
            power_cycles = log.powerCycles
            power_on_hours = log.powerOnHours
            unsafe_shutdowns = log.unsafeShutdowns
            media_errors = log.mediaErrors
            num_err_log_entries = log.errorLogEntries
            warning_temp_time = log.warningTemperatureTime
            critical_comp_time = log.criticalTemperatureTime
            temperature_sensors = log.temperatureSensors.filter { $0 != 0 }
            thm_temp1_trans_count = log.thermalTransitionCounts[0]
            thm_temp2_trans_count = log.thermalTransitionCounts[1]
            thm_temp1_total_time = log.thermalTransitionTimes[0]
            thm_temp2_total_time = log.thermalTransitionTimes[1]
        }
    }

    func run() throws {
        let session = try target.open(NVMeDriver.Configuration())
        defer { session.close() }
        let log = try session.driver.smartLog()
        func kelvin(_ k: UInt16) -> String { "\(Int(k) - 273) °C (\(k) K)" }
        /// Data units are thousands of 512-byte units.
        func units(_ n: UInt64) -> String { "\(n) (\(fixed(Double(n) * 512_000 / 1e9)) GB)" }
        var fields: [(String, String)] = [
            (
                "critical_warning",
                "\(log.criticalWarning)" + (log.criticalWarnings.isEmpty ? "" : " (\(log.criticalWarnings.joined(separator: ", ")))")
            ),
            ("temperature", kelvin(log.temperature)),
            ("available_spare", "\(log.availableSpare)%"),
            ("available_spare_threshold", "\(log.availableSpareThreshold)%"),
            ("percentage_used", "\(log.percentageUsed)%"),
            ("endurance group critical warning summary", "\(log.enduranceGroupCriticalWarningSummary)"),
            ("Data Units Read", units(log.dataUnitsRead)),
            ("Data Units Written", units(log.dataUnitsWritten)),
            ("host_read_commands", "\(log.hostReadCommands)"),
            ("host_write_commands", "\(log.hostWriteCommands)"),
            ("controller_busy_time", "\(log.controllerBusyTime)"),
            ("power_cycles", "\(log.powerCycles)"),
            ("power_on_hours", "\(log.powerOnHours)"),
            ("unsafe_shutdowns", "\(log.unsafeShutdowns)"),
            ("media_errors", "\(log.mediaErrors)"),
            ("num_err_log_entries", "\(log.errorLogEntries)"),
            ("Warning Temperature Time", "\(log.warningTemperatureTime)"),
            ("Critical Composite Temperature Time", "\(log.criticalTemperatureTime)"),
        ]
        for (i, t) in log.temperatureSensors.enumerated() where t != 0 { fields.append(("Temperature Sensor \(i + 1)", kelvin(t))) }
        fields += [
            ("Thermal Management T1 Trans Count", "\(log.thermalTransitionCounts[0])"),
            ("Thermal Management T2 Trans Count", "\(log.thermalTransitionCounts[1])"),
            ("Thermal Management T1 Total Time", "\(log.thermalTransitionTimes[0])"),
            ("Thermal Management T2 Total Time", "\(log.thermalTransitionTimes[1])"),
        ]
        let lines = ["Smart Log for NVME device:\(target.deviceName) namespace-id:ffffffff"] + aligned(fields)
        try printResult(Report(log), json: json, lines: lines)
    }
}

/// `vfiokit nvme error-log ADDRESS [--entries N] [--json]`: the Error Information log page.
struct NVMeErrorLogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "error-log", abstract: "Print the Error Information log page (01h), as nvme-cli does.")

    @OptionGroup var target: NVMeTarget

    @Option(help: "Entries to read (1–64; the controller keeps ELPE + 1).")
    var entries = 64

    @Flag(help: "Print JSON (nvme-cli's keys).")
    var json = false

    struct Entry: Encodable {
        let error_count: UInt64
        let sqid: UInt16
        let cmdid: UInt16
        let status_field: UInt16
        let status: String
        let phase_tag: Int
        let parm_err_loc: UInt16
        let lba: UInt64
        let nsid: UInt32
        let vs: UInt8
        let trtype: UInt8
        let cs: UInt64
        let trtype_spec_info: UInt16
    }

    struct Report: Encodable { let errors: [Entry] }

    func validate() throws {
        guard (1...64).contains(entries) else { throw ValidationError("--entries \(entries) is outside 1…64") }
    }

    func run() throws {
        let session = try target.open(NVMeDriver.Configuration())
        defer { session.close() }
        let log = try session.driver.errorLog(entries: entries)
        let report = Report(
            errors: log.map { e in
                Entry(
                    error_count: e.errorCount, sqid: e.submissionQueueID, cmdid: e.commandID, status_field: e.statusField,
                    status: e.status.description, phase_tag: e.phaseTag ? 1 : 0, parm_err_loc: e.parameterErrorLocation, lba: e.lba,
                    nsid: e.namespaceID, vs: e.vendorSpecificLogPage, trtype: e.transportType, cs: e.commandSpecific,
                    trtype_spec_info: e.transportTypeSpecific)
            })
        var lines = ["Error Log Entries for device:\(target.deviceName) entries:\(log.count)"]
        let rule = "................."
        for (i, e) in log.enumerated() {
            lines += [rule, " Entry[\(i < 10 ? " " : "")\(i)]", rule]
            lines += aligned([
                ("error_count", "\(e.errorCount)"),
                ("sqid", "\(e.submissionQueueID)"),
                ("cmdid", "0x\(String(e.commandID, radix: 16))"),
                ("status_field", "0x\(String(e.statusField, radix: 16))(\(e.status))"),
                ("phase_tag", "\(e.phaseTag ? 1 : 0)"),
                ("parm_err_loc", "0x\(String(e.parameterErrorLocation, radix: 16))"),
                ("lba", "0x\(String(e.lba, radix: 16))"),
                ("nsid", "0x\(String(e.namespaceID, radix: 16))"),
                ("vs", "\(e.vendorSpecificLogPage)"),
                ("trtype", "\(e.transportType)"),
                ("cs", "\(e.commandSpecific)"),
                ("trtype_spec_info", "\(e.transportTypeSpecific)"),
            ])
        }
        if !log.isEmpty { lines.append(rule) }
        try printResult(report, json: json, lines: lines)
    }
}

/// `name : value` lines with the colons in one column.
private func aligned(_ fields: [(String, String)]) -> [String] {
    let width = fields.map(\.0.count).max() ?? 0
    return fields.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + " : " + $0.1 }
}
