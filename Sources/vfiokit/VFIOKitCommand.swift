import ArgumentParser

@main
struct VFIOKitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vfiokit",
        abstract: "Userspace PCI drivers over VFIO and UIO.",
        subcommands: [
            InspectCommand.self,
            RunCommand.self,
            BenchCommand.self,
        ])
}
