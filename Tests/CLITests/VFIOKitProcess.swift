import Foundation

/// The executable `name` (`vfiokit` or `vfiokit-bench`) that SwiftPM built next to this test bundle.
func builtExecutable(_ name: String = "vfiokit") throws -> URL {
    let places = [
        Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent(),
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
    ]
    for place in places {
        let candidate = place.appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    }
    throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: "\(name) next to \(places.map(\.path))"])
}

/// Runs the built `executable` with `arguments`, and with `environment` over this process's
/// environment; returns its exit status, standard output and error.
func runVFIOKit(
    _ arguments: [String], environment: [String: String] = [:], executable: String = "vfiokit"
) throws -> (status: Int32, output: String, error: String) {
    try runProgram(try builtExecutable(executable), arguments, environment: environment)
}

/// Runs the program at `url` with `arguments`, and with `environment` over this process's
/// environment, to its end; returns its exit status, standard output and error.
func runProgram(
    _ url: URL, _ arguments: [String], environment: [String: String] = [:]
) throws -> (status: Int32, output: String, error: String) {
    let process = Process()
    process.executableURL = url
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let output = Pipe()
    let error = Pipe()
    process.standardOutput = output
    process.standardError = error
    try process.run()
    let outputData = output.fileHandleForReading.readDataToEndOfFile()
    let errorData = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outputData, as: UTF8.self), String(decoding: errorData, as: UTF8.self))
}

/// A `vfiokit` process left running in the background, its output going to files.
final class BackgroundVFIOKit {
    let process = Process()
    let directory: URL
    var output: String { (try? String(contentsOf: directory.appendingPathComponent("out"), encoding: .utf8)) ?? "" }
    var error: String { (try? String(contentsOf: directory.appendingPathComponent("err"), encoding: .utf8)) ?? "" }

    init(_ arguments: [String], environment: [String: String]) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("vfiokit-bg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: directory.appendingPathComponent("out").path, contents: nil)
        _ = FileManager.default.createFile(atPath: directory.appendingPathComponent("err").path, contents: nil)
        process.executableURL = try builtExecutable()
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = try FileHandle(forWritingTo: directory.appendingPathComponent("out"))
        process.standardError = try FileHandle(forWritingTo: directory.appendingPathComponent("err"))
        try process.run()
    }

    /// Sends `signal` and waits up to 20 s for the process to exit; returns its status, or nil
    /// if it did not exit (it is then killed).
    func stop(_ signal: Int32 = SIGTERM) -> Int32? {
        kill(process.processIdentifier, signal)
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        guard !process.isRunning else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Polls `condition` every 50 ms for up to `seconds`.
func eventually(_ seconds: Double = 20, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return true }
        usleep(50_000)
    }
    return try condition()
}
