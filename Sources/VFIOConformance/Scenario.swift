import SystemPackage
import VFIOKit

/// One conformance scenario: an ioctl sequence written once at the ``SystemCalls`` seam and run
/// in each IOMMU mode it applies to, against the mock and against the real kernel.
public struct Scenario: Sendable {
    public let name: String
    /// Where it comes from: a kernel selftest, a DPDK/SPDK pitfall, or VFIO's uAPI.
    public let origin: String
    let modes: Set<IOMMUMode>
    /// The devices it needs beyond the edu device.
    public let needs: @Sendable (ConformanceTarget) -> Bool
    let body: @Sendable (Session) throws(Session.Stop) -> Void

    init(
        _ name: String, origin: String, modes: Set<IOMMUMode> = IOMMUMode.allSelftestModes,
        needs: @escaping @Sendable (ConformanceTarget) -> Bool = { _ in true },
        _ body: @escaping @Sendable (Session) throws(Session.Stop) -> Void
    ) {
        self.name = name
        self.origin = origin
        self.modes = modes
        self.needs = needs
        self.body = body
    }

    /// Runs the scenario in `mode` and returns what happened; everything it opened is closed.
    func run(on system: any SystemCalls, mode: IOMMUMode, target: ConformanceTarget) -> ConformanceRecord {
        let session = Session(system: system, mode: mode, target: target)
        do { try body(session) } catch {}
        session.finish()
        return ConformanceRecord(scenario: name, mode: mode.name, lines: session.lines)
    }
}

/// The scenario list and how a run over it goes.
public enum Conformance {
    /// Every scenario, in the order runs print them.
    public static let scenarios: [Scenario] =
        dmaScenarios + groupScenarios + deviceScenarios + featureScenarios + sweepScenarios + iommufdScenarios

    /// The modes `system` offers: the type1 modes with `/dev/vfio/vfio`, the iommufd ones
    /// with `/dev/iommu` as well.
    public static func availableModes(_ system: any SystemCalls) -> [IOMMUMode] {
        func exists(_ path: String) -> Bool {
            guard let fd = try? system.open(path, O_RDWR) else { return false }
            // Only a probe: a file just opened, with nothing done on it, has nothing to flush.
            try? system.close(fd)
            return true
        }
        let legacy = exists(SysfsLayout.absolute(SysfsLayout.vfioContainer)), iommufd = exists(SysfsLayout.absolute(SysfsLayout.iommufd))
        return IOMMUMode.selftestModes.filter { $0.containerPath == SysfsLayout.absolute(SysfsLayout.vfioContainer) ? legacy : iommufd }
    }

    /// Runs every scenario that `target` has the devices for, in each of `modes` it applies to.
    public static func run(on system: any SystemCalls, target: ConformanceTarget, modes: [IOMMUMode]) -> [ConformanceRecord] {
        var records: [ConformanceRecord] = []
        for scenario in scenarios where scenario.needs(target) {
            for mode in modes where scenario.modes.contains(mode) {
                records.append(scenario.run(on: system, mode: mode, target: target))
            }
        }
        return records
    }

    /// The summary line every run prints: `D` counts the records that differ outside their
    /// known differences, `R` the records compared step by step; the known differences the
    /// comparison applied follow in parentheses when there are any.
    /// `conformance: N scenarios x M modes x K kernels, D differences in R records`.
    public static func summary(scenarios: Int, modes: Int, kernels: Int, records: Int, differences: Int, known: Int) -> String {
        let line =
            "conformance: \(scenarios) scenarios x \(modes) modes x \(kernels) \(kernels == 1 ? "kernel" : "kernels"), "
            + "\(differences) differences in \(records) records"
        return known == 0 ? line : line + " (\(known) known)"
    }
}

#if canImport(Glibc)
import Glibc
#endif
