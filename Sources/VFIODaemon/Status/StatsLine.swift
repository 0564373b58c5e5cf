/// The one-line summary the daemon prints at an interval on a terminal: devices running,
/// interrupts and I/O per second over the interval, errors so far.
struct StatsLine {
    private var last: (interrupts: UInt64, operations: UInt64)?

    /// The line for `report`, `seconds` after the previous one.
    mutating func line(_ report: StatusReport, seconds: Double) -> String {
        let interrupts = report.devices.reduce(0) { $0 + $1.interrupts.reduce(0) { $0 + $1.count } }
        let operations = report.devices.reduce(0) { $0 + $1.operations }
        let errors = report.devices.reduce(0) { $0 + $1.errors }
        let running = report.devices.filter { $0.state == "running" }.count
        defer { last = (interrupts, operations) }
        let previous = last ?? (0, 0)
        let rate = { (now: UInt64, before: UInt64) in now >= before ? Int(Double(now - before) / max(seconds, 0.001)) : 0 }
        return "\(running)/\(report.devices.count) devices running, \(rate(interrupts, previous.interrupts)) interrupts/s, "
            + "\(rate(operations, previous.operations)) I/O/s, \(errors) errors\(report.simulated ? " (simulated)" : "")"
    }
}
