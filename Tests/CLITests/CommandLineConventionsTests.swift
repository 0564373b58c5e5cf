import Foundation
import Testing

/// What users of nvme-cli and systemctl expect of the command line.
@Suite struct CommandLineConventionsTests {
    @Test func versionIsThePackageVersionAndTheCommit() throws {
        let result = try runVFIOKit(["--version"])
        #expect(result.status == 0)
        let version = try String(contentsOf: SystemdUnitTests.repository.appendingPathComponent("VERSION"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        // Built from a checkout: the commit too.
        #expect(
            result.output.range(of: #"^\#(version) \(git [0-9a-f]{12}(-dirty)?\)\n$"#, options: .regularExpression) != nil,
            "\(result.output)")
    }

    @Test func aUsageErrorFromASubcommandEndsWithItsOwnUsage() throws {
        let result = try runVFIOKit(["run", "--backend", "bogus"])
        #expect(result.status == 64)
        #expect(result.error.contains("Error: unknown backend \"bogus\""))
        #expect(result.error.contains("Usage: vfiokit run "), "stderr: \(result.error)")
        #expect(result.error.hasSuffix("See 'vfiokit run --help' for more information.\n"), "stderr: \(result.error)")
    }

    @Test(arguments: [["run"], ["selftest"], ["context"], ["nvme", "identify"]])
    func eachOptionsDefaultIsShownOnce(_ command: [String]) throws {
        let help = try runVFIOKit(command + ["--help"]).output
        // An option's help runs from its line to the next option's.
        let options = help.components(separatedBy: "\n  -")
        for option in options {
            #expect(option.components(separatedBy: "default:").count <= 2, "\(option)")
        }
    }
}
