import Foundation
import Testing

/// What `vfiokit run` writes, wherever it goes: the SIMULATED banner first, start, state changes
/// and shutdown at notice, journal priority prefixes under systemd, each count once.
@Suite(.serialized) struct DaemonOutputTests {
    let stateDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("vfiokit-state-\(UUID().uuidString)").path
    var environment: [String: String] { ["VFIOKIT_STATE_DIR": stateDirectory] }

    func waitForRunning() throws -> Bool {
        try eventually {
            let result = try runVFIOKit(["status", "--json"], environment: environment)
            return result.status == 0 && result.output.contains("\"running\"")
        }
    }

    @Test func theBannerIsTheFirstLineAndShutdownSaysWhatWasReleased() throws {
        defer { try? FileManager.default.removeItem(atPath: stateDirectory) }
        let daemon = try BackgroundVFIOKit(["run", "--stats-interval", "0"], environment: environment)
        #expect(try waitForRunning(), "stderr: \(daemon.error)")
        // Written at once, not held in a buffer until exit: there while the daemon runs.
        let first = daemon.error.split(separator: "\n").first.map(String.init) ?? ""
        #expect(first.contains("notice vfiokit.daemon: [vfiokit] SIMULATED: no device or config given"), "stderr: \(daemon.error)")
        #expect(daemon.error.contains("started"))
        #expect(daemon.stop() == 0)
        #expect(daemon.error.contains("shutting down (SIGTERM or SIGINT)"))
        #expect(
            daemon.error.contains(
                "shut down; released 0000:00:04.0 (drivers stopped, interrupts disabled, DMA unmapped, devices reset and closed)"))
        #expect(daemon.output.isEmpty, "stdout: \(daemon.output)")
    }

    @Test func aRefusedSecondRunPrintsNoBanner() throws {
        defer { try? FileManager.default.removeItem(atPath: stateDirectory) }
        let daemon = try BackgroundVFIOKit(["run", "--stats-interval", "0"], environment: environment)
        #expect(try waitForRunning(), "stderr: \(daemon.error)")
        let second = try runVFIOKit(["run", "--stats-interval", "0"], environment: environment)
        #expect(second.status != 0)
        #expect(second.error.contains("another vfiokit daemon"))
        #expect(!second.error.contains("SIMULATED") && !second.output.contains("SIMULATED"), "\(second)")
        #expect(daemon.stop() == 0)
    }

    @Test func anEmptyDeviceListIsAnErrorNamingTheFileNotTheSimulatedDevice() throws {
        let config = stateDirectory + ".json"
        defer { try? FileManager.default.removeItem(atPath: config) }
        try Data(#"{"devices": []}"#.utf8).write(to: URL(fileURLWithPath: config))
        let daemon = try BackgroundVFIOKit(["run", "--config", config, "--stats-interval", "0"], environment: environment)
        #expect(eventually(10) { !daemon.process.isRunning })
        #expect(daemon.stop() == 1)
        #expect(daemon.error.contains("the configuration \(config) is not usable: \"devices\" is empty"), "stderr: \(daemon.error)")
        #expect(!daemon.error.contains("SIMULATED"))
    }

    /// Journal records: `<N>` first, no timestamp, notice as 5 and errors as 3.
    func expectJournalFormat(_ error: String) {
        let lines = error.split(separator: "\n")
        #expect(!lines.isEmpty)
        for line in lines {
            #expect(line.range(of: #"^<[0-7]>vfiokit\.[a-z]+: "#, options: .regularExpression) != nil, "\(line)")
            #expect(line.range(of: #"\d{4}-\d\d-\d\dT"#, options: .regularExpression) == nil, "\(line)")
        }
        #expect(lines.first?.hasPrefix("<5>vfiokit.daemon: SIMULATED:") == true)
    }

    @Test func logFormatJournalWritesPriorityPrefixesAndNoTimestamp() throws {
        defer { try? FileManager.default.removeItem(atPath: stateDirectory) }
        let daemon = try BackgroundVFIOKit(["run", "--stats-interval", "0", "--log-format", "journal"], environment: environment)
        #expect(try waitForRunning(), "stderr: \(daemon.error)")
        #expect(daemon.stop() == 0)
        expectJournalFormat(daemon.error)
        #expect(daemon.error.contains("<5>vfiokit.daemon: shut down; released 0000:00:04.0"))
    }

    /// systemd's JOURNAL_STREAM names the stream stderr is connected to; a matching one means
    /// journal format, a stale one (stderr redirected elsewhere) does not.
    @Test(arguments: [true, false])
    func journalStreamMatchingStderrMeansJournalFormat(_ matching: Bool) throws {
        defer { try? FileManager.default.removeItem(atPath: stateDirectory) }
        // The daemon's stderr is this file; JOURNAL_STREAM names it, or names another inode.
        let errFile = FileManager.default.temporaryDirectory.appendingPathComponent("vfiokit-journal-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: errFile.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errFile) }
        var info = stat()
        #expect(stat(errFile.path, &info) == 0)
        let stream = "\(info.st_dev):\(matching ? info.st_ino : info.st_ino + 1)"
        let process = Process()
        process.executableURL = try builtExecutable()
        process.arguments = ["run", "--stats-interval", "0"]
        process.environment = ProcessInfo.processInfo.environment.merging(environment.merging(["JOURNAL_STREAM": stream]) { $1 }) { $1 }
        process.standardError = try FileHandle(forWritingTo: errFile)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        #expect(try waitForRunning())
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        let error = try String(contentsOf: errFile, encoding: .utf8)
        if matching {
            expectJournalFormat(error)
        } else {
            #expect(error.split(separator: "\n").first?.contains("notice vfiokit.daemon: [vfiokit] SIMULATED") == true, "\(error)")
            #expect(!error.contains("<5>"))
        }
    }

    @Test func isolatedRunsSummariseEachDeviceOnceAndStatusShowsEachGroupCountOnce() throws {
        defer { try? FileManager.default.removeItem(atPath: stateDirectory) }
        let daemon = try BackgroundVFIOKit(
            ["run", "--isolate", "--simulated-devices", "2", "--stats-interval", "0"], environment: environment)
        #expect(try waitForRunning(), "stderr: \(daemon.error)")
        #expect(
            try eventually {
                let text = try runVFIOKit(["status"], environment: environment).output
                return text.components(separatedBy: "  ims-queue  running").count == 3
            })
        let text = try runVFIOKit(["status"], environment: environment).output
        for group in 0..<4 {
            let name = "IMS slots \(group * 4)-\(group * 4 + 3) on MSI-X 0"
            // Once per device: two devices.
            #expect(text.components(separatedBy: name).count == 3, "\(name) in:\n\(text)")
        }
        #expect(daemon.stop() == 0, "stderr: \(daemon.error)")
        for address in ["0000:00:04.0", "0000:00:05.0"] {
            let summaries = daemon.error.split(separator: "\n").filter {
                $0.contains("simulated kernel after shutdown") && $0.hasSuffix("device \(address)")
            }
            #expect(summaries.count == 1, "stderr: \(daemon.error)")
        }
    }
}
