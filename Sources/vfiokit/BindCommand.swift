import ArgumentParser
import CLIOutput
#if canImport(Glibc)
import Glibc
#endif
import PCI
import VFIOHost
import VFIOKit

/// `vfiokit bind`: hand devices to vfio-pci or uio_pci_generic through driver_override.
struct BindCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bind",
        abstract: "Bind devices to vfio-pci (or uio_pci_generic), remembering their original drivers.",
        discussion: """
            Writes driver_override, unbinds the current driver and asks the kernel to probe \
            (drivers_probe); loads no modules. The original driver is recorded in \
            $VFIOKIT_STATE_DIR/bindings.json (default /run/vfiokit) for `vfiokit unbind --restore`. \
            Refuses devices that do not exist, IOMMU groups with members on other host drivers \
            (see --whole-group), and devices the host uses (see --force). Warns when RLIMIT_MEMLOCK \
            is below --pin-size.
            """)

    enum UserspaceDriver: String, ExpressibleByArgument, CaseIterable {
        case vfioPCI = "vfio-pci"
        case uioPCIGeneric = "uio_pci_generic"

        var name: DriverName { self == .vfioPCI ? .vfioPCI : .uioPCIGeneric }
    }

    @Argument(help: "The devices, as 0000:03:00.0 or 03:00.0.", transform: { try PCIAddress(parsing: $0) })
    var addresses: [PCIAddress]

    @Option(help: "The driver to bind.")
    var driver: UserspaceDriver = .vfioPCI

    @Flag(help: "Also bind every other member of each device's IOMMU group that holds a host driver.")
    var wholeGroup = false

    @Flag(help: "Bind even devices that back mounted filesystems, swap, or network interfaces that are up.")
    var force = false

    @Option(
        help: "Memory a driver of these devices will pin for DMA (65536, 512K, 64M, 2G); a lower RLIMIT_MEMLOCK draws a warning.",
        transform: { text in
            guard let size = parseByteSize(text) else { throw ValidationError("--pin-size wants a size like 64M, not \"\(text)\"") }
            return size
        })
    var pinSize: UInt64 = MemlockLimit.defaultPinSize

    @OptionGroup var options: BindingOptions

    func run() throws {
        let request = BindRequest(
            addresses: addresses, driver: driver.name, wholeGroup: wholeGroup, force: force, pinSize: pinSize)
        try options.carryOut(
            verb: "bind", unchangedNote: "already on \(driver.rawValue)",
            plan: { try $0.planBind(request) }, apply: { try $0.bind(request) })
    }
}

/// The flags `bind` and `unbind` share, and how both carry out a request on this host.
struct BindingOptions: ParsableArguments {
    @Flag(help: "Show what would be done and write nothing.")
    var dryRun = false

    @Flag(help: "Print JSON: {changes, unchanged, warnings, dryRun}.")
    var json = false

    /// Plans, then carries the plan out unless --dry-run, and prints what was (or would be) done.
    func carryOut<Plan: ReportablePlan>(
        verb: String, unchangedNote: String, plan: (HostBinding) throws -> Plan,
        apply: (HostBinding) throws -> (Plan, [SysfsBinder.Change])
    ) throws {
        let binding = HostBinding(discovery: PCIDiscovery(), store: .fromEnvironment())
        let outcome: BindingOutcome
        if dryRun {
            let planned = try plan(binding)
            outcome = BindingOutcome(planned, changes: planned.intendedChanges, dryRun: true)
        } else {
            let (done, changes) = try apply(binding)
            outcome = BindingOutcome(done, changes: changes, dryRun: false)
        }
        outcome.print(json: json, verb: verb, unchangedNote: unchangedNote)
    }
}

/// What bind and unbind plans have in common, for the report.
protocol ReportablePlan {
    var intendedChanges: [SysfsBinder.Change] { get }
    /// Devices that are already where the command would put them.
    var unchangedAddresses: [PCIAddress] { get }
    var warnings: [BindWarning] { get }
}

extension BindPlan: ReportablePlan {
    var unchangedAddresses: [PCIAddress] { alreadyBound }
}

extension UnbindPlan: ReportablePlan {
    var unchangedAddresses: [PCIAddress] { alreadyRestored }
}

/// What `bind` and `unbind` report.
struct BindingOutcome: Encodable {
    let changes: [SysfsBinder.Change]
    let unchanged: [String]
    let warnings: [String]
    let dryRun: Bool

    init(_ plan: some ReportablePlan, changes: [SysfsBinder.Change], dryRun: Bool) {
        self.changes = changes
        unchanged = plan.unchangedAddresses.map(\.description)
        warnings = plan.warnings.map(\.description)
        self.dryRun = dryRun
    }

    func print(json: Bool, verb: String, unchangedNote: String) {
        if json {
            Swift.print(jsonText(self))
            return
        }
        for warning in warnings { printError("warning: \(warning)") }
        let prefix = dryRun ? "would \(verb) " : ""
        for change in changes {
            Swift.print("\(prefix)\(change.address): \(change.from?.rawValue ?? "no driver") → \(change.to?.rawValue ?? "no driver")")
        }
        for address in unchanged { Swift.print("\(address): \(unchangedNote)") }
    }
}
