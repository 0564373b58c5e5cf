import Foundation
import Testing
@testable import VFIOHost

/// Each test reads a pci.ids of its own, made for it and removed after it, so the names do not
/// depend on the machine's copy.
@Suite final class PCINameDatabaseTests {
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("pci-\(UUID().uuidString).ids")
    let names: PCINameDatabase

    init() throws {
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
        names = PCINameDatabase(idsFile: file.path)
    }

    deinit { try? FileManager.default.removeItem(at: file) }

    @Test func namesComeFromTheIDsFile() {
        #expect(names.vendorName(0x1234) == "Test Vendor Ltd.")
        #expect(names.deviceName(vendor: 0x1234, device: 0x11e8) == "Educational device")
        #expect(names.className(0x0108) == "Non-Volatile memory controller")
        #expect(names.className(0x0604) == "PCI bridge")
    }

    @Test func unknownIDsAreShownTheWayLspciShowsThem() {
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
