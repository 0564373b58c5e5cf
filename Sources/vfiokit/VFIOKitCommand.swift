import ArgumentParser

@main
struct VFIOKitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vfiokit",
        abstract: "Userspace PCI drivers over VFIO and UIO.",
        subcommands: [
            ListCommand.self,
            InfoCommand.self,
            BindCommand.self,
            UnbindCommand.self,
            InspectCommand.self,
            RunCommand.self,
            WorkerCommand.self,
            StatusCommand.self,
            SelfTestCommand.self,
            ContextCommand.self,
            ConformanceCommand.self,
            NVMeToolCommand.self,
        ])
}
