import ArgumentParser
import PCI
import VFIODrivers
import VFIOKit
import VFIOMock

/// `vfiokit context ADDRESS... [--backend …]`: opens devices into one IOMMU context and checks
/// they share it.
struct ContextCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "context",
        abstract: "Open devices into one IOMMU context and check they share it; exits 0 only if every step checked out.",
        discussion: """
            Functions of one IOMMU group, or devices of several groups, share one container or IOAS. \
            With two edu devices, one's DMA writes a buffer that the other's DMA reads back. With no \
            ADDRESS it runs on two simulated edu devices through the mock VFIO kernel model.
            """)

    @Argument(help: "The devices' PCI addresses. Omit them to use two simulated edu devices.", transform: { try PCIAddress(parsing: $0) })
    var addresses: [PCIAddress] = []

    @Option(help: "auto, iommufd, legacy, noiommu or uio (VFIOKIT_BACKEND overrides auto).")
    var backend: Backend = .auto

    @OptionGroup var logging: LoggingOptions

    func run() throws {
        var targets = addresses
        let system: any SystemCalls
        if targets.isEmpty {
            let kernel = MockKernel()
            targets = [try PCIAddress(parsing: "0000:00:04.0"), try PCIAddress(parsing: "0000:00:05.0")]
            for address in targets { try kernel.plug(EduDevice(), at: address) }
            print(
                "simulated: no ADDRESS given, so two simulated edu devices at \(targets.map { "\($0)" }.joined(separator: " and ")) are used"
            )
            system = kernel
        } else {
            system = HostSystemCalls.shared
        }
        let context = IOMMUContext(backend: backend, system: system, logger: logging.logger())
        defer { context.close() }
        let devices = try targets.map { try context.open($0) }
        let loop = try EventLoop(system: system)
        try loop.start()
        defer { loop.stop() }
        let steps = SharedContextTest.run(devices, in: context, loop: loop) { print($0) }
        let failed = steps.filter { $0.passed == false }.count
        print("context: \(steps.count - failed) ok or skipped, \(failed) failed")
        if failed > 0 { throw ExitCode.failure }
    }
}

extension Backend: ExpressibleByArgument {}
