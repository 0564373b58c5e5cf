import ArgumentParser
import PCI
import VFIOHost

/// `vfiokit unbind`: release devices from their userspace driver, optionally restoring the
/// driver they had before `vfiokit bind`.
struct UnbindCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unbind",
        abstract: "Release devices from vfio-pci or uio_pci_generic; with --restore, give them back their original driver.",
        discussion: """
            Clears driver_override and unbinds. With --restore, binds the driver recorded by \
            `vfiokit bind` (or, with no record, lets the kernel probe one) and forgets the record. \
            Refuses a device on a host driver unless --force.
            """)

    @Argument(help: "The devices, as 0000:03:00.0 or 03:00.0.", transform: { try PCIAddress(parsing: $0) })
    var addresses: [PCIAddress]

    @Flag(help: "Bind each device's original driver again.")
    var restore = false

    @Flag(help: "Unbind even a device that is bound to a host driver (no in-use check is made then).")
    var force = false

    @OptionGroup var options: BindingOptions

    func run() throws {
        let request = UnbindRequest(addresses: addresses, restore: restore, force: force)
        try options.carryOut(
            verb: "unbind", unchangedNote: "already back on its original driver",
            plan: { try $0.planUnbind(request) }, apply: { try $0.unbind(request) })
    }
}
