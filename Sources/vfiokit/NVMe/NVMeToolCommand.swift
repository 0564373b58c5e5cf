import ArgumentParser

/// `vfiokit nvme identify|read|write|verify|bench|ublk|nbd`: the NVMe sample driver, shaped like nvme-cli.
struct NVMeToolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nvme",
        abstract: "Drive an NVMe controller from userspace: identify, read, write, verify, bench, serve over ublk or NBD.",
        discussion: """
            ADDRESS is a controller bound to vfio-pci (`vfiokit bind ADDRESS`). With --simulated, a simulated \
            controller runs through the mock VFIO kernel model instead; the argument in ADDRESS's place is then an \
            image file backing its namespace (created with 64 MiB when absent), so separate runs see the same data.
            """,
        subcommands: [
            NVMeIdentifyCommand.self, NVMeReadCommand.self, NVMeWriteCommand.self, NVMeVerifyCommand.self,
            NVMeBenchCommand.self, NVMeUblkCommand.self, NVMeNBDCommand.self,
        ])
}
