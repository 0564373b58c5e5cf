import ArgumentParser
import CLIOutput
import VFIODrivers

/// `vfiokit nvme dsm ADDRESS --lba L --blocks N [--namespace 1]`: nvme-cli's `dsm --ad`.
struct NVMeDeallocateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dsm",
        abstract: "Deallocate (trim) blocks with Dataset Management.",
        discussion: "Whether they then read as zeroes is the namespace's DLFEAT (identify's deallocatedReadsZero).")

    @OptionGroup var target: NVMeTarget
    @OptionGroup var range: NVMeBlockRangeOptions

    func run() async throws {
        let (lba, blocks, namespace) = try range.checked()
        guard let count = UInt32(exactly: blocks) else { throw ValidationError("--blocks must be below 2^32 for one range") }
        let session = try target.open(NVMeDriver.Configuration())
        defer { session.close() }
        let ns = try session.namespace(namespace)
        let list = try session.device.dma.allocate(4096)
        try await session.driver.deallocate(namespace: ns.id, lba: lba, blocks: count, list: list)
        printError("deallocated \(blocks) blocks at LBA \(lba) of namespace \(ns.id)")
    }
}

/// `vfiokit nvme write-zeroes ADDRESS --lba L --blocks N [--deac] [--namespace 1]`.
struct NVMeWriteZeroesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "write-zeroes", abstract: "Zero blocks with Write Zeroes, no data transferred.")

    @OptionGroup var target: NVMeTarget
    @OptionGroup var range: NVMeBlockRangeOptions
    @Flag(help: "Let the controller deallocate the blocks (DEAC), where DLFEAT says it honours that.") var deac = false

    func run() async throws {
        let (lba, blocks, namespace) = try range.checked()
        let session = try target.open(NVMeDriver.Configuration())
        defer { session.close() }
        let ns = try session.namespace(namespace)
        try await session.driver.writeZeroes(namespace: ns.id, lba: lba, blocks: blocks, deallocate: deac)
        printError("zeroed \(blocks) blocks at LBA \(lba) of namespace \(ns.id)\(deac && ns.writeZeroesCanDeallocate ? " (DEAC)" : "")")
    }
}
