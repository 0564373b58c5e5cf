import FoundationEssentials
import PCI

/// The devices this daemon bound itself and must give back: `daemon-bindings.json` in the
/// state directory, written before each bind and emptied once every device is restored.
///
/// When the daemon is killed (SIGKILL, a trap), the file stays; the next daemon, holding the
/// same state directory's lock, finds it and finishes the restore before anything else.
/// Written whole and renamed into place, so it is never half-written.
struct BindingJournal: Sendable {
    let path: String

    init(stateDirectory: String) { path = stateDirectory + "/daemon-bindings.json" }

    private struct Contents: Codable {
        var pid: Int32
        var devices: [String]
    }

    /// The devices a previous daemon left bound, with its pid; nil when it left none.
    func leftover() throws(DaemonError) -> (pid: Int32, devices: [PCIAddress])? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        do {
            let contents = try JSONDecoder().decode(Contents.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
            let devices = try contents.devices.map { try PCIAddress(parsing: $0) }
            return devices.isEmpty ? nil : (contents.pid, devices)
        } catch {
            throw .setup(
                "the bindings journal \(path) is unreadable (\(error)); restore its devices with `vfiokit unbind --restore`, then remove it"
            )
        }
    }

    /// Records that this process owns the bindings of `devices` (replacing what was there).
    func record(_ devices: [PCIAddress], pid: Int32) throws(DaemonError) {
        if devices.isEmpty {
            try? FileManager.default.removeItem(atPath: path)
            return
        }
        do {
            let data = try JSONEncoder().encode(Contents(pid: pid, devices: devices.map(\.description)))
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch { throw .setup("cannot write the bindings journal \(path): \(error)") }
    }
}
