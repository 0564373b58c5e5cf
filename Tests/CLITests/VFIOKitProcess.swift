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
    let process = Process()
    process.executableURL = try builtExecutable(executable)
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
