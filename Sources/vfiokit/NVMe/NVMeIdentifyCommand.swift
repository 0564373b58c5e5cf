import ArgumentParser
import CLIOutput
import Foundation
import VFIODrivers

/// `vfiokit nvme identify ADDRESS [--json]`: Identify Controller and every active namespace.
struct NVMeIdentifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "identify", abstract: "Print what Identify Controller and Identify Namespace report.")

    @OptionGroup var target: NVMeTarget

    @Flag(help: "Print JSON.")
    var json = false

    struct Report: Encodable {
        let controller: NVMeControllerIdentity
        let namespaces: [NVMeNamespaceIdentity]
        let maxTransferBytes: Int
        /// The NVM command set's Write Zeroes and Dataset Management limits (CNS 06h).
        let limits: NVMeNVMLimits
    }

    func run() throws {
        let session = try target.open(NVMeDriver.Configuration())
        defer { session.close() }
        guard let controller = session.driver.controller else { throw ValidationError("the controller was not identified") }
        let limits = session.driver.limits
        let report = Report(
            controller: controller, namespaces: session.driver.namespaces, maxTransferBytes: session.driver.maxTransfer, limits: limits)
        let none = "no limit"
        let version = "\(controller.version >> 16).\((controller.version >> 8) & 0xff).\(controller.version & 0xff)"
        var lines = [
            "vid     : 0x\(String(controller.vendorID, radix: 16))",
            "ssvid   : 0x\(String(controller.subsystemVendorID, radix: 16))",
            "sn      : \(controller.serialNumber)",
            "mn      : \(controller.modelNumber)",
            "fr      : \(controller.firmwareRevision)",
            "mdts    : \(controller.maxDataTransferExponent) (\(session.driver.maxTransfer) bytes per command)",
            "cntlid  : 0x\(String(controller.controllerID, radix: 16))",
            "ver     : \(version)",
            "nn      : \(controller.namespaceCount)",
            "vwc     : \(controller.volatileWriteCache ? 1 : 0)",
            "crdt    : \(controller.commandRetryDelayTimes.map { "\($0 * 100) ms" }.joined(separator: ", "))",
            "wzsl    : \(limits.maxWriteZeroesBytes.map { "\($0) bytes" } ?? none)",
            "dmrl    : \(limits.maxDeallocateRanges) ranges",
            "dmrsl   : \(limits.maxDeallocateRangeBlocks.map { "\($0) blocks" } ?? none)",
            "dmsl    : \(limits.maxDeallocateBlocks.map { "\($0) blocks" } ?? none)",
        ]
        for ns in report.namespaces {
            lines.append(
                "namespace \(ns.id): nsze \(ns.size), ncap \(ns.capacity), nuse \(ns.utilization), lba size \(ns.blockSize), \(ns.bytes) bytes"
            )
        }
        try printResult(report, json: json, lines: lines)
    }
}
