import Foundation
import Testing

/// `vfiokit selftest`: the sample edu driver end to end on the simulated device, and its refusals.
@Suite struct SelfTestCommandTests {
    /// The step lines (`ok`, `FAIL` or `skip`) and the count of steps the summary says passed.
    static func report(_ output: String) throws -> (steps: [Substring], ok: Int, failed: Int) {
        let lines = output.split(separator: "\n")
        let steps = lines.filter { $0.hasPrefix("ok ") || $0.hasPrefix("FAIL ") || $0.hasPrefix("skip ") }
        let summary = try #require(lines.last { $0.hasPrefix("edu: ") })
        let match = try #require(summary.wholeMatch(of: /edu: (\d+) ok, (\d+) failed, \d+ skipped/))
        return (steps, try #require(Int(match.1)), try #require(Int(match.2)))
    }

    @Test func runsEveryEduStepOnTheSimulatedDevice() throws {
        let result = try runVFIOKit(["selftest", "--driver", "edu"])
        #expect(result.status == 0, "stderr: \(result.error)")
        let report = try Self.report(result.output)
        #expect(report.steps.count >= 6)
        #expect(report.steps.allSatisfy { $0.hasPrefix("ok ") }, "\(report.steps)")
        #expect(report.ok == report.steps.count)
        #expect(report.failed == 0)
        #expect(result.output.contains("ok   factorial: 10! = 3628800"))
    }

    @Test(arguments: ["uio", "noiommu"])
    func runsOnTheBackendsWithoutAnIOMMU(_ backend: String) throws {
        let result = try runVFIOKit(["selftest", "--driver", "edu", "--backend", backend])
        #expect(result.status == 0, "stderr: \(result.error)")
        let report = try Self.report(result.output)
        #expect(report.failed == 0)
        #expect(report.ok >= 6)
        #expect(!report.steps.contains { $0.hasPrefix("FAIL ") }, "\(report.steps)")
        #expect(result.output.contains("skip iommu fault: the \(backend) backend has no IOMMU"))
    }

    @Test func refusesAnUnknownDriver() throws {
        let result = try runVFIOKit(["selftest", "--driver", "nope"])
        #expect(result.status != 0)
        #expect(result.output.isEmpty)
        #expect(result.error.contains("unknown driver \"nope\": the sample drivers are edu"))
    }

    @Test func refusesABadAddressNamingIt() throws {
        let result = try runVFIOKit(["selftest", "--driver", "edu", "0000:zz:00.0"])
        #expect(result.status != 0)
        #expect(result.output.isEmpty)
        #expect(result.error.contains("invalid PCI address \"0000:zz:00.0\""))
    }
}
