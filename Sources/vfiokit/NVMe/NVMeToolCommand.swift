import ArgumentParser

/// `vfiokit nvme identify|read|write|dsm|write-zeroes|verify|bench|ublk|nbd|smart-log|error-log`: the NVMe sample driver, shaped like nvme-cli.
struct NVMeToolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nvme",
        abstract:
            "Drive an NVMe controller from userspace: identify, read, write, deallocate, zero, verify, bench, serve over ublk or NBD, read its SMART and error logs.",
        discussion: """
            ADDRESS is a controller bound to vfio-pci (`vfiokit bind ADDRESS`). With --simulated, a simulated \
            controller runs through the mock VFIO kernel model instead; the argument in ADDRESS's place is then an \
            image file backing its namespace, which must exist and be a whole number of 512-byte blocks (--create \
            SIZE makes an absent or empty one), so separate runs see the same data.
            """,
        subcommands: [
            NVMeIdentifyCommand.self, NVMeReadCommand.self, NVMeWriteCommand.self, NVMeDeallocateCommand.self,
            NVMeWriteZeroesCommand.self, NVMeVerifyCommand.self,
            NVMeBenchCommand.self, NVMeUblkCommand.self, NVMeNBDCommand.self, NVMeSMARTLogCommand.self,
            NVMeErrorLogCommand.self,
        ])
}
