import Foundation
import Testing

/// One daemon per host, found by `vfiokit status` however it was started: with the packaged
/// unit's environment, or by hand.
@Suite(.serialized) struct StateDirectoryTests {
    /// The `Environment=` settings of systemd/vfiokit.service.
    static func unitEnvironment() throws -> [String: String] {
        let unit = try String(contentsOf: SystemdUnitTests.repository.appendingPathComponent("systemd/vfiokit.service"), encoding: .utf8)
        var environment: [String: String] = [:]
        for line in unit.split(separator: "\n") where line.hasPrefix("Environment=") {
            for assignment in line.dropFirst("Environment=".count).split(separator: " ") {
                let parts = assignment.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { environment[String(parts[0])] = String(parts[1]) }
            }
        }
        return environment
    }

    /// The pid `vfiokit status --json` reports with no VFIOKIT_STATE_DIR, once a daemon answers.
    func statusPid() throws -> Int? {
        var pid: Int?
        _ = try eventually {
            let result = try runVFIOKit(["status", "--json"], environment: ["VFIOKIT_STATE_DIR": ""])
            pid = (try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])?["pid"] as? Int
            return pid != nil
        }
        return pid
    }

    @Test func statusFindsTheDaemonTheUnitStartsAndASecondIsRefused() throws {
        let unit = try Self.unitEnvironment().merging(["VFIOKIT_STATE_DIR": ""]) { a, _ in a }
        let daemon = try BackgroundVFIOKit(["run", "--stats-interval", "0"], environment: unit)
        defer { _ = daemon.stop() }
        #expect(try statusPid() == Int(daemon.process.processIdentifier), "stderr: \(daemon.error)")

        // By hand, with no environment: the same lock, so refused, before any banner.
        let second = try BackgroundVFIOKit(["run", "--stats-interval", "0"], environment: ["VFIOKIT_STATE_DIR": ""])
        #expect(eventually(10) { !second.process.isRunning })
        #expect(second.stop() == 1)
        #expect(
            second.error.contains("another vfiokit daemon (pid \(daemon.process.processIdentifier)) is running"), "stderr: \(second.error)")
        #expect(!second.error.contains("SIMULATED") && second.output.isEmpty)

        // Killed, it leaves its socket; the next daemon replaces it and status finds the new one.
        #expect(daemon.stop(SIGKILL) == SIGKILL)
        let next = try BackgroundVFIOKit(["run", "--stats-interval", "0"], environment: unit)
        #expect(try statusPid() == Int(next.process.processIdentifier), "stderr: \(next.error)")
        #expect(next.stop() == 0, "stderr: \(next.error)")
        let after = try runVFIOKit(["status"], environment: ["VFIOKIT_STATE_DIR": ""])
        #expect(after.status == 1 && after.error.contains("no vfiokit daemon is running"))
    }
}
