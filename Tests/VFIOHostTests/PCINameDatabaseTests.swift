import Foundation
import Testing
@testable import VFIOHost

@Suite struct PCINameDatabaseTests {
    /// A pci.ids of our own, so the names do not depend on the machine's copy.
    func database() throws -> (PCINameDatabase, URL) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("pci-\(UUID().uuidString).ids")
        try """
        # test ids
        1234  Test Vendor Ltd.
        \t11e8  Educational device
        C 01  Mass storage controller
        \t08  Non-Volatile memory controller
        \t\t02  NVM Express
        C 06  Bridge
        \t04  PCI bridge

        """.write(to: file, atomically: true, encoding: .utf8)
        return (PCINameDatabase(idsFile: file.path), file)
    }

    @Test func namesComeFromTheIDsFile() throws {
        let (names, file) = try database()
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(names.vendorName(0x1234) == "Test Vendor Ltd.")
        #expect(names.deviceName(vendor: 0x1234, device: 0x11e8) == "Educational device")
        #expect(names.className(0x0108) == "Non-Volatile memory controller")
        #expect(names.className(0x0604) == "PCI bridge")
    }

    @Test func unknownIDsAreShownTheWayLspciShowsThem() throws {
        let (names, file) = try database()
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(names.vendorName(0xabcd) == "Vendor abcd")
        #expect(names.deviceName(vendor: 0x1234, device: 0x0d57) == "Device 0d57")
        #expect(names.className(0x0199) == "Mass storage controller [0199]")
        #expect(names.className(0xff00) == "Class ff00")
    }

    @Test func missingIDsFileMakesNamesNumericWithoutFailing() {
        let names = PCINameDatabase(idsFile: "/nonexistent/pci.ids")
        #expect(names.vendorName(0x8086) == "Vendor 8086")
        #expect(names.deviceName(vendor: 0x8086, device: 0x1234) == "Device 1234")
    }
}
