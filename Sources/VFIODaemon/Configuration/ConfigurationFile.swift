import FoundationEssentials
import PCI
import VFIOKit

/// The `--config` file: JSON, read with Foundation's decoder (no extra dependency; the daemon's
/// state files are JSON too).
///
///     {
///       "bind": true,
///       "isolate": true,
///       "backend": "auto",
///       "devices": [
///         { "address": "0000:00:03.0", "driver": "edu", "context": "a" },
///         { "address": "0000:00:05.0", "driver": "msix-loopback" },
///         { "address": "0000:03:00.0", "driver": "nvme", "exports": ["nbd:/run/vfiokit/ns1.sock", "ublk,namespace=2"] }
///       ]
///     }
///
/// Only `devices` and each `address` are required. Devices with the same `context` share one
/// IOMMU context. `isolate` runs each IOMMU context's drivers in a worker process of its own
/// (`vfiokit run --isolate`). `exports` serves an NVMe device's namespaces (see
/// ``ExportSpecification``).
public struct ConfigurationFile: Codable, Sendable {
    public struct Entry: Codable, Sendable {
        public var address: String
        public var driver: String?
        public var context: String?
        public var exports: [String]?
    }

    public var bind: Bool?
    public var isolate: Bool?
    public var backend: String?
    public var devices: [Entry]

    /// The file that lists `devices` on `backend`, binding nothing.
    public init(devices: [DaemonConfiguration.Device], backend: Backend) {
        self.backend = backend.rawValue
        self.devices = devices.map { Entry(address: $0.address.description, driver: $0.driver, context: $0.context, exports: Self.exportStrings($0.exports)) }
    }

    /// Reads and checks `path` (see ``parse(_:path:)``).
    public static func load(_ path: String) throws(DaemonError) -> ConfigurationFile {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .badConfiguration(path: path, reason: "cannot read it (\(error))")
        }
        return try parse(data, path: path)
    }

    /// Decodes and checks the file's bytes: every address parses, no device is named twice,
    /// the backend is known. `path` only names the file in errors.
    public static func parse(_ data: Data, path: String) throws(DaemonError) -> ConfigurationFile {
        let file: ConfigurationFile
        do { file = try JSONDecoder().decode(ConfigurationFile.self, from: data) } catch {
            throw .badConfiguration(path: path, reason: "not the expected JSON: \(error)")
        }
        if let backend = file.backend, Backend(rawValue: backend) == nil {
            throw .badConfiguration(
                path: path, reason: "backend \"\(backend)\" is not one of \(Backend.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var seen = Set<PCIAddress>()
        for device in try file.parsedDevices(path: path) where !seen.insert(device.address).inserted {
            throw .badConfiguration(path: path, reason: "\(device.address) is listed twice")
        }
        return file
    }

    /// The entries with their addresses parsed.
    public func parsedDevices(path: String) throws(DaemonError) -> [DaemonConfiguration.Device] {
        var result: [DaemonConfiguration.Device] = []
        for entry in devices {
            guard let address = try? PCIAddress(parsing: entry.address) else {
                throw .badConfiguration(path: path, reason: "\"\(entry.address)\" is not a PCI address (use 0000:03:00.0)")
            }
            let exports = try parsedExports(entry, path: path)
            result.append(DaemonConfiguration.Device(address: address, driver: entry.driver, context: entry.context, exports: exports))
        }
        return result
    }
}
