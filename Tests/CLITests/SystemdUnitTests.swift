import Foundation
import Testing

/// systemd/vfiokit.service passes `systemd-analyze verify`, with ExecStart pointed at the
/// vfiokit this test bundle was built with.
@Suite struct SystemdUnitTests {
    static let analyzer = "/usr/bin/systemd-analyze"
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test(
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: analyzer), "systemd-analyze is not installed (.ci/setup installs systemd)"))
    func theUnitVerifies() throws {
        let unit = try String(contentsOf: Self.repository.appendingPathComponent("systemd/vfiokit.service"), encoding: .utf8)
        #expect(unit.contains("ExecStart=/usr/local/bin/vfiokit run --isolate "))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vfiokit-unit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let copy = directory.appendingPathComponent("vfiokit.service")
        try unit.replacingOccurrences(of: "/usr/local/bin/vfiokit", with: try builtExecutable().path).write(
            to: copy, atomically: true, encoding: .utf8)

        let result = try runProgram(URL(fileURLWithPath: Self.analyzer), ["verify", copy.path])
        let messages = result.output + result.error
        #expect(result.status == 0, "\(messages)")
        #expect(messages.isEmpty, "systemd-analyze complained: \(messages)")
    }

    @Test func theUnitRunsUnprivilegedWithOnlyCAP_IPC_LOCK() throws {
        let unit = try String(contentsOf: Self.repository.appendingPathComponent("systemd/vfiokit.service"), encoding: .utf8)
        let settings = Set(unit.split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init))
        for expected in [
            "DynamicUser=yes", "Group=vfio", "AmbientCapabilities=CAP_IPC_LOCK", "CapabilityBoundingSet=CAP_IPC_LOCK",
            "LimitMEMLOCK=infinity", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "KillMode=mixed",
        ] {
            #expect(settings.contains(expected), "missing \(expected)")
        }
    }
}
