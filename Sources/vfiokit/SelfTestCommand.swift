import ArgumentParser
import CLIOutput
import PCI
import VFIODrivers
import VFIOKit

/// `vfiokit selftest --driver NAME [ADDRESS] [--backend …]`: runs a sample driver end to end.
struct SelfTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Run a sample driver on a device, step by step; exits 0 only if every step checked out.",
        discussion: "With no ADDRESS the driver runs on a simulated device through the mock VFIO kernel model.")

    @Option(help: "The sample driver to check: \(SampleProgram.all.map(\.name).joined(separator: ", ")).")
    var driver: String

    @Argument(help: "The device's PCI address, e.g. 0000:00:04.0. Omit it to use the simulated device.")
    var address: String?

    @Option(help: "auto, iommufd, legacy, noiommu or uio (VFIOKIT_BACKEND overrides auto).")
    var backend: String = "auto"

    @OptionGroup var logging: LoggingOptions

    func run() throws {
        guard let program = SampleProgram.named(driver) else {
            throw ValidationError(
                "unknown driver \"\(driver)\": the sample drivers are \(SampleProgram.all.map(\.name).joined(separator: ", "))")
        }
        guard let chosen = Backend(rawValue: backend) else {
            throw ValidationError("unknown backend \"\(backend)\": use \(Backend.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let target: PCIAddress
        let system: any SystemCalls
        if let address {
            target = try PCIAddress(parsing: address)
            system = HostSystemCalls.shared
        } else {
            let machine = try SimulatedMachine(program.simulatedDevice(), backend: chosen)
            print(
                "simulated: no ADDRESS given, so \(program.name) runs on a simulated device at \(machine.address) through the mock VFIO kernel model"
            )
            target = machine.address
            system = machine.kernel
        }
        let device = try PCIDevice.open(target, backend: chosen, system: system, logger: logging.logger())
        defer { device.close() }
        if !device.backend.translatesDMA {
            printError(
                "WARNING: the \(device.backend) backend has no IOMMU: \(device.address) can read and write any memory by DMA")
        }
        let loop = try EventLoop(system: system)
        try loop.start()
        defer { loop.stop() }
        var steps = program.run(device, loop) { print($0) }
        steps.append(StaleViewCheck.run(closing: device))
        print(steps[steps.count - 1])
        let failed = steps.filter { $0.passed == false }.count
        let skipped = steps.filter { $0.passed == nil }.count
        print("\(program.name): \(steps.count - failed - skipped) ok, \(failed) failed, \(skipped) skipped")
        if failed > 0 { throw ExitCode.failure }
    }
}
