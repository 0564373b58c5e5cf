import ArgumentParser
import PCI

/// `vfiokit inspect --dump FILE [--json]`: decodes every device of an lspci config-space dump.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Decode the devices of an lspci -x/-xxx/-xxxx config-space dump.",
        discussion: """
            Prints each device's address, IDs, class, header type, config-space size, BARs and \
            capabilities with their decoded fields. Bytes the dump does not hold are reported as \
            unavailable, never read as zero.
            """)

    @Option(help: ArgumentHelp("The dump file, as lspci -xxxx (or -x, -xxx) writes it.", valueName: "file"))
    var dump: String

    @Flag(help: "Print JSON (keys sorted) instead of text.")
    var json = false

    func run() throws {
        let report = InspectReport(dump: try PCIDump(contentsOfFile: dump))
        print(json ? try report.json() : report.text(), terminator: json ? "\n" : "")
    }
}
