import VFIOKit

/// What `vfiokit status` shows: the daemon and each device it hosts.
public struct StatusReport: Codable, Sendable, Equatable {
    public var pid: Int32
    /// True when the devices are simulated by the mock kernel, not real hardware.
    public var simulated: Bool
    /// Seconds since the daemon started.
    public var uptimeSeconds: Double
    public var devices: [DeviceStatus]
}

/// One hosted device.
public struct DeviceStatus: Codable, Sendable, Equatable {
    public struct DMA: Codable, Sendable, Equatable {
        public var mappings: Int
        public var bytes: Int
    }

    public var address: String
    public var driver: String
    public var backend: String
    /// The IOMMU context the device shares with others ("group 12", or the config's name).
    public var context: String
    /// running, failed, removed or stopped.
    public var state: String
    /// Why it failed or was removed.
    public var detail: String?
    public var interrupts: [DriverActivity.Vector]
    public var operations: UInt64
    public var errors: UInt64
    /// Per-queue submissions, completions and timeouts, for drivers that count them.
    public var queues: [DriverActivity.Queue]? = nil
    /// The last error of the work loop, while it keeps failing.
    public var lastError: String?
    /// The DMA of the device's IOMMU context, which the devices sharing it share.
    public var dma: DMA
    /// IOMMU faults read from the kernel log since start; nil when the log cannot be read
    /// (no IOMMU, or no permission to read /dev/kmsg).
    public var iommuFaults: Int?
    /// The device's health as its driver last read it, for drivers that read it.
    public var health: DeviceHealth? = nil
    /// The namespaces it serves over NBD or ublk; nil when none.
    public var exports: [ExportStatus]? = nil
}

extension StatusReport {
    /// The report as a person reads it. Any report that decodes shows: an interrupt total past
    /// `UInt64.max` shows as `UInt64.max`, an uptime beyond `Int` as the number it is.
    public var text: String {
        let uptime = Int(exactly: uptimeSeconds.rounded(.towardZero)).map(String.init) ?? "\(uptimeSeconds)"
        var lines = ["vfiokit daemon pid \(pid), up \(uptime) s\(simulated ? ", SIMULATED devices (mock VFIO kernel model)" : "")"]
        if devices.isEmpty { lines.append("  no devices") }
        for d in devices {
            lines.append("  \(d.address)  \(d.driver)  \(d.state)\(d.detail.map { ": \($0)" } ?? "")")
            lines.append("    backend \(d.backend), context \(d.context)")
            // Each count once: vectors outside a group on the total's line, a group's on its own line.
            let vectors = d.interrupts.filter { $0.group == nil }.map { "\($0.name)=\($0.count)" }
            lines.append("    interrupts \(d.interrupts.reduce(0) { Self.sum($0, $1.count) })\(vectors.isEmpty ? "" : " (\(vectors.joined(separator: ", ")))")")
            for (group, count) in Self.groupTotals(d.interrupts) {
                let members = d.interrupts.filter { $0.group == group }
                let detail = members.count > 1 ? " (\(members.map { "\($0.name)=\($0.count)" }.joined(separator: ", ")))" : ""
                lines.append("    group \(group): \(count) interrupts\(detail)")
            }
            lines.append("    operations \(d.operations), errors \(d.errors)\(d.lastError.map { " (last: \($0))" } ?? "")")
            if let queues = d.queues {
                let submitted: UInt64 = queues.reduce(0) { Self.sum($0, $1.submitted) }
                let completed: UInt64 = queues.reduce(0) { Self.sum($0, $1.completed) }
                let timeouts: UInt64 = queues.reduce(0) { Self.sum($0, $1.timeouts) }
                lines.append("    \(queues.count) queues: submitted \(submitted), completed \(completed), timeouts \(timeouts)")
            }
            lines.append("    DMA \(d.dma.mappings) mappings, \(d.dma.bytes) bytes; IOMMU faults \(d.iommuFaults.map(String.init) ?? "not readable")")
            if let health = d.health { lines.append("    health: " + health.summary) }
            for e in d.exports ?? [] { lines += e.textLines }
        }
        return lines.joined(separator: "\n")
    }

    /// Interrupt totals per slot group (IMS), in order of first appearance.
    static func groupTotals(_ vectors: [DriverActivity.Vector]) -> [(String, UInt64)] {
        var totals: [(String, UInt64)] = []
        for v in vectors {
            guard let g = v.group else { continue }
            if let i = totals.firstIndex(where: { $0.0 == g }) { totals[i].1 = sum(totals[i].1, v.count) } else { totals.append((g, v.count)) }
        }
        return totals
    }

    /// `a + b`, or `UInt64.max` past it.
    private static func sum(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (total, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : total
    }
}

extension DeviceHealth {
    /// The fields the device reports, then its critical warnings ("none" when there are none).
    var summary: String {
        var parts: [String] = []
        if let kelvin = temperatureKelvin { parts.append("temperature \(kelvin - 273) °C") }
        if let spare = availableSparePercent {
            parts.append("spare \(spare) %" + (availableSpareThresholdPercent.map { " (threshold \($0) %)" } ?? ""))
        }
        if let media = mediaErrors { parts.append("media errors \(media)") }
        if let entries = errorLogEntries { parts.append("error log entries \(entries)") }
        let warnings = criticalWarnings.isEmpty ? "none" : criticalWarnings.joined(separator: "; ")
        return (parts.isEmpty ? "" : parts.joined(separator: ", ") + "; ") + "critical warnings: " + warnings
    }
}
