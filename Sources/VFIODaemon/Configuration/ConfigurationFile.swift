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
/// Only `devices` (at least one) and each `address` are required. Devices with the same
/// `context` share one IOMMU context. `isolate` runs each IOMMU context's drivers in a worker
/// process of their own (`vfiokit run --isolate`). A key the daemon does not know is an error,
/// not ignored: a misspelt `"bnid": true` would otherwise leave devices unbound silently.
/// `exports` serves an NVMe device's namespaces (see ``ExportSpecification``).
public struct ConfigurationFile: Codable, Sendable {
    public struct Entry: Codable, Sendable {
        public var address: String
        public var driver: String?
        public var context: String?
        public var exports: [String]?

        /// The keys of a device entry; adding a key is adding it here and as a property.
        enum CodingKeys: String, CodingKey, CaseIterable { case address, driver, context, exports }
    }

    public var bind: Bool?
    public var isolate: Bool?
    public var backend: String?
    public var devices: [Entry]

    /// The file's top-level keys; adding a key is adding it here and as a property.
    enum CodingKeys: String, CodingKey, CaseIterable { case bind, isolate, backend, devices }

    /// The file that lists `devices` on `backend`, binding nothing.
    public init(devices: [DaemonConfiguration.Device], backend: Backend) {
        self.backend = backend.rawValue
        self.devices = devices.map {
            Entry(address: $0.address.description, driver: $0.driver, context: $0.context, exports: Self.exportStrings($0.exports))
        }
    }

    /// Reads and checks `path` (see ``parse(_:path:)``); a file that cannot be read is
    /// ``DaemonError/unreadable(path:reason:)`` with the system's reason.
    public static func load(_ path: String) throws(DaemonError) -> ConfigurationFile {
        try parse(try DaemonError.readFile(path), path: path)
    }

    /// Decodes and checks the file's bytes: JSON (a syntax error named by line and column),
    /// no key the daemon does not know, at least one device, every address parses, no device
    /// named twice, the backend known. `path` only names the file in errors.
    public static func parse(_ data: Data, path: String) throws(DaemonError) -> ConfigurationFile {
        if let syntax = JSONSyntax.firstError(in: Array(data)) {
            throw .badConfiguration(path: path, reason: "line \(syntax.line), column \(syntax.column): expected \(syntax.expected)")
        }
        try ConfigurationKeys.check(data, path: path)
        let file: ConfigurationFile
        do { file = try JSONDecoder().decode(ConfigurationFile.self, from: data) } catch {
            throw .badConfiguration(path: path, reason: ConfigurationKeys.describe(error))
        }
        guard !file.devices.isEmpty else {
            throw .badConfiguration(path: path, reason: "\"devices\" is empty: list at least one, as {\"address\": \"0000:03:00.0\"}")
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
