import CoreMetrics
import Prometheus
import Synchronization
import VFIOKit

/// The daemon's Prometheus metrics, made through swift-metrics with swift-prometheus's
/// factory on a registry of the daemon's own (no global bootstrap, so tests can make several).
///
/// Drivers keep their own counts (``DriverActivity``); ``update(_:)`` carries a status
/// report into the metrics, adding to each counter what it grew by since the last update.
final class DaemonMetrics: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private struct Recorded {
        var counters: [String: (counter: CoreMetrics.Counter, last: UInt64)] = [:]
        var gauges: [String: CoreMetrics.Gauge] = [:]
    }
    private let recorded = Mutex(Recorded())

    init() { factory = PrometheusMetricsFactory(registry: registry) }

    /// Records `report`'s counts and levels.
    func update(_ report: StatusReport) {
        recorded.withLock { r in
            for state in ["running", "failed", "removed", "stopped"] {
                gauge(&r, "vfiokit_devices", ["state": state], Double(report.devices.filter { $0.state == state }.count))
            }
            for d in report.devices {
                let device = ["device": d.address, "driver": d.driver]
                for v in d.interrupts {
                    var labels = device
                    labels["vector"] = v.name
                    if let g = v.group { labels["group"] = g }
                    count(&r, "vfiokit_interrupts_total", labels, v.count)
                }
                count(&r, "vfiokit_operations_total", device, d.operations)
                count(&r, "vfiokit_errors_total", device, d.errors)
                if let faults = d.iommuFaults { count(&r, "vfiokit_iommu_faults_total", device, UInt64(faults)) }
                gauge(&r, "vfiokit_dma_mapped_bytes", device, Double(d.dma.bytes))
                gauge(&r, "vfiokit_dma_mappings", device, Double(d.dma.mappings))
                if let health = d.health { record(&r, health, device) }
                for e in d.exports ?? [] { record(&r, e, device: device) }
            }
        }
    }

    /// A device's health: temperature, spare, critical warnings and its lifetime error counts.
    private func record(_ r: inout Recorded, _ health: DeviceHealth, _ device: [String: String]) {
        if let kelvin = health.temperatureKelvin { gauge(&r, "vfiokit_device_temperature_celsius", device, Double(kelvin) - 273.15) }
        if let spare = health.availableSparePercent { gauge(&r, "vfiokit_device_available_spare_ratio", device, Double(spare) / 100) }
        if let threshold = health.availableSpareThresholdPercent {
            gauge(&r, "vfiokit_device_available_spare_threshold_ratio", device, Double(threshold) / 100)
        }
        gauge(&r, "vfiokit_device_critical_warnings", device, Double(health.criticalWarnings.count))
        if let media = health.mediaErrors { count(&r, "vfiokit_device_media_errors_total", device, media) }
        if let errors = health.errorLogEntries { count(&r, "vfiokit_device_error_log_entries_total", device, errors) }
    }

    /// An export's series, labelled by device, protocol (`export`), namespace and target.
    private func record(_ r: inout Recorded, _ e: ExportStatus, device: [String: String]) {
        var labels = device
        labels["export"] = e.kind
        labels["namespace"] = "\(e.namespace)"
        labels["target"] = e.target
        count(&r, "vfiokit_export_errors_total", labels, e.errors)
        let s = e.detail
        gauge(&r, "vfiokit_export_clients", labels, Double(s.clients))
        gauge(&r, "vfiokit_export_in_flight", labels, Double(s.inFlight))
        count(&r, "vfiokit_export_connections_total", labels, s.connections)
        let kinds: [(String, UInt64, UInt64?)] = [
            ("read", s.reads, s.bytesRead), ("write", s.writes, s.bytesWritten), ("flush", s.flushes, nil),
            ("discard", s.discards, s.bytesDiscarded), ("write_zeroes", s.writeZeroes, s.bytesZeroed),
        ]
        for (kind, requests, bytes) in kinds {
            var byKind = labels
            byKind["kind"] = kind
            count(&r, "vfiokit_export_requests_total", byKind, requests)
            if let bytes { count(&r, "vfiokit_export_bytes_total", byKind, bytes) }
        }
    }

    /// The Prometheus text exposition of every metric.
    func text() -> String { registry.emitToString() }

    private func key(_ name: String, _ labels: [String: String]) -> String {
        name + labels.sorted { $0.key < $1.key }.map { "|\($0.key)=\($0.value)" }.joined()
    }

    private func count(_ r: inout Recorded, _ name: String, _ labels: [String: String], _ total: UInt64) {
        let k = key(name, labels)
        let entry =
            r.counters[k] ?? (
                CoreMetrics.Counter(
                    label: name, dimensions: labels.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, factory: factory), 0
            )
        // A device attached again starts counting from zero; count its new total.
        let grown = total >= entry.last ? total - entry.last : total
        if grown > 0 { entry.counter.increment(by: Int64(clamping: grown)) }
        r.counters[k] = (entry.counter, total)
    }

    private func gauge(_ r: inout Recorded, _ name: String, _ labels: [String: String], _ value: Double) {
        let k = key(name, labels)
        let g =
            r.gauges[k]
            ?? CoreMetrics.Gauge(label: name, dimensions: labels.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, factory: factory)
        g.record(value)
        r.gauges[k] = g
    }
}
