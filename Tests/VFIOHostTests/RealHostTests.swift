import Foundation
import PCI
import Testing
@testable import VFIOHost

let hostHasPCI = !((try? FileManager.default.contentsOfDirectory(atPath: "/sys/bus/pci/devices")) ?? []).isEmpty

/// `vfiokit list` on the machine running the tests, checked against its own /sys/bus/pci and,
/// where installed, lspci. Skipped (with a message) where there is no PCI bus in sysfs.
@Suite(.enabled(if: hostHasPCI, "this machine has no /sys/bus/pci/devices; nothing to compare list with"))
struct RealHostTests {
    func sysfs(_ address: String, _ attribute: String) -> String? {
        (try? String(contentsOfFile: "/sys/bus/pci/devices/\(address)/\(attribute)", encoding: .utf8))?
            .trimmingCharacters(in: .newlines)
    }

    func link(_ address: String, _ name: String) -> String? {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/sys/bus/pci/devices/\(address)/\(name)"))
            .map { URL(fileURLWithPath: $0).lastPathComponent }
    }

    @Test func listJSONMatchesSysfs() throws {
        let json = jsonText(try PCIDeviceListing.all(PCIDiscovery(), names: PCINameDatabase()))
        let entries = try #require(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])
        let expected = try FileManager.default.contentsOfDirectory(atPath: "/sys/bus/pci/devices").sorted()
        #expect(entries.compactMap { $0["address"] as? String } == expected)
        for entry in entries {
            let address = try #require(entry["address"] as? String)
            #expect(entry["vendor"] as? String == sysfs(address, "vendor"), "\(address) vendor")
            #expect(entry["device"] as? String == sysfs(address, "device"), "\(address) device")
            #expect(entry["class"] as? String == sysfs(address, "class"), "\(address) class")
            #expect((entry["driver"] as? String) == link(address, "driver"), "\(address) driver")
            #expect(entry["driver"] != nil, "every key is present, null when absent")
            let group = link(address, "iommu_group").flatMap { Int($0) }
            #expect((entry["iommuGroup"] as? Int) == group, "\(address) group")
            let numa = sysfs(address, "numa_node").flatMap { Int($0) }.flatMap { $0 < 0 ? nil : $0 }
            #expect((entry["numaNode"] as? Int) == numa, "\(address) NUMA node")
        }
    }

    @Test func udevEnumerationMatchesTheSysfsListing() throws {
        let udev = try UdevPCIEnumerator().addresses()
        let sysfs = try SysfsPCIEnumerator(tree: .system).addresses()
        #expect(udev == sysfs)
        #expect(!udev.isEmpty)
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/lspci"), "lspci is not installed"))
    func namesMatchLspci() throws {
        // lspci -mm: `00:02.0 "Class" "Vendor" "Device" -rXX ...`, with the same libpci lookups.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/lspci")
        process.arguments = ["-mm", "-D"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        var lspci: [String: [String]] = [:]
        for line in output.split(separator: "\n") {
            let quoted = line.split(separator: "\"", omittingEmptySubsequences: false).enumerated()
                .filter { $0.offset % 2 == 1 }.map { String($0.element) }
            lspci[String(line.prefix(while: { $0 != " " }))] = quoted
        }
        let listing = try PCIDeviceListing.all(PCIDiscovery(), names: PCINameDatabase())
        #expect(!listing.isEmpty)
        for entry in listing {
            let fields = try #require(lspci[entry.address], "lspci lists \(entry.address)")
            #expect(Array(fields.prefix(3)) == [entry.className, entry.vendorName, entry.deviceName], "\(entry.address)")
        }
    }

    @Test func infoReadsEveryRealDevice() throws {
        for address in try SysfsPCIEnumerator(tree: .system).addresses() {
            let report = try DeviceReport.read(address, discovery: PCIDiscovery(), names: PCINameDatabase())
            #expect(report.device.address == address.description)
            #expect(report.configBytesRead >= 64)
            #expect(report.iommuGroup?.number == link(address.description, "iommu_group").flatMap { Int($0) })
        }
    }
}
