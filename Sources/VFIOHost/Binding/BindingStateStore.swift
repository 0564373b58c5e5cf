import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import PCI
import VFIOKit

/// What `vfiokit bind` remembers about a device so that `vfiokit unbind --restore` can give it
/// back.
public struct BindingRecord: Codable, Equatable, Sendable {
    /// The driver the device had before the first `vfiokit bind`; nil when it had none.
    public var originalDriver: DriverName?
    /// The userspace driver it was bound to.
    public var boundTo: DriverName

    public init(originalDriver: DriverName?, boundTo: DriverName) {
        self.originalDriver = originalDriver
        self.boundTo = boundTo
    }
}

/// The state file `bindings.json` in a state directory: `$VFIOKIT_STATE_DIR`, else
/// `/run/vfiokit` (gone after a reboot, as are the bindings it describes).
///
/// Updates are read-modify-write under an exclusive `flock` on `bindings.lock`, and the new
/// file replaces the old by rename, so a crash leaves either the old or the new state.
public struct BindingStateStore: Sendable {
    public let directory: String

    public static let defaultDirectory = "/run/vfiokit"

    public init(directory: String) { self.directory = directory }

    /// The store named by `$VFIOKIT_STATE_DIR`, or the default.
    public static func fromEnvironment() -> BindingStateStore {
        let dir = getenv("VFIOKIT_STATE_DIR").map { String(cString: $0) }
        return BindingStateStore(directory: dir.flatMap { $0.isEmpty ? nil : $0 } ?? defaultDirectory)
    }

    public var path: String { directory + "/bindings.json" }

    /// Every record; empty when no file exists yet.
    public func load() throws(BindingStateError) -> [PCIAddress: BindingRecord] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            if !FileManager.default.fileExists(atPath: path) { return [:] }
            throw .unreadable(path: path, reason: "\(error)")
        }
        let file: StateFile
        do { file = try JSONDecoder().decode(StateFile.self, from: data) } catch {
            throw .corrupt(path: path, reason: "\(error)")
        }
        var records: [PCIAddress: BindingRecord] = [:]
        for (key, record) in file.devices {
            guard let address = try? PCIAddress(parsing: key) else {
                throw .corrupt(path: path, reason: "\"\(key)\" is not a PCI address")
            }
            records[address] = record
        }
        return records
    }

    /// Applies `change` to the records and saves the result, holding the lock throughout.
    public func update(_ change: (inout [PCIAddress: BindingRecord]) -> Void) throws(BindingStateError) {
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        } catch { throw .unwritable(path: directory, reason: "\(error)") }
        let lockPath = directory + "/bindings.lock"
        let lock = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lock >= 0 else { throw .unwritable(path: lockPath, reason: String(cString: strerror(errno))) }
        defer { close(lock) }
        while flock(lock, LOCK_EX) != 0 {
            guard errno == EINTR else { throw .unwritable(path: lockPath, reason: String(cString: strerror(errno))) }
        }
        var records = try load()
        change(&records)
        let file = StateFile(
            version: 1, devices: Dictionary(uniqueKeysWithValues: records.map { ($0.key.description, $0.value) }))
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(file).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch { throw .unwritable(path: path, reason: "\(error)") }
    }

    private struct StateFile: Codable {
        var version: Int
        var devices: [String: BindingRecord]
    }
}

/// A failure to read or write the binding state file.
public enum BindingStateError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case corrupt(path: String, reason: String)
    case unwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            "cannot read the binding state \(path): \(reason); run as root or set VFIOKIT_STATE_DIR"
        case let .corrupt(path, reason):
            """
            the binding state \(path) is corrupt (\(reason)); fix it by hand, or remove it (the original drivers it \
            recorded are then forgotten and `unbind --restore` lets the kernel choose)
            """
        case let .unwritable(path, reason):
            "cannot write the binding state \(path): \(reason); run as root or set VFIOKIT_STATE_DIR to a writable directory"
        }
    }
}
