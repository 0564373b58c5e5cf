import Testing
import VFIOKit

/// The match table, field by field, as Linux's pci_match_one_device compares them.
@Suite struct PCIMatchTests {
    static let nvme = PCIDeviceIdentity(
        vendor: 0x1b36, device: 0x0010, subsystemVendor: 0x1af4, subsystemDevice: 0x1100, classCode: 0x010802)

    @Test func absentFieldsMatchAnything() {
        #expect(PCIMatch().matches(Self.nvme))
        #expect(PCIMatch(vendor: 0x1b36).matches(Self.nvme))
        #expect(!PCIMatch(vendor: 0x8086).matches(Self.nvme))
    }

    @Test func everyGivenFieldMustMatch() {
        #expect(PCIMatch(vendor: 0x1b36, device: 0x0010, subsystemVendor: 0x1af4, subsystemDevice: 0x1100).matches(Self.nvme))
        #expect(!PCIMatch(vendor: 0x1b36, device: 0x0011).matches(Self.nvme))
        #expect(!PCIMatch(subsystemVendor: 0x1af5).matches(Self.nvme))
        #expect(!PCIMatch(vendor: 0x1b36, subsystemDevice: 0x1101).matches(Self.nvme))
    }

    @Test func theClassIsComparedUnderItsMask() {
        // Any NVMe controller (class 01 08 02), whoever made it.
        #expect(PCIMatch(classCode: 0x010802).matches(Self.nvme))
        // Any mass-storage controller: base class only.
        #expect(PCIMatch(classCode: 0x01_00_00, classMask: 0xff_00_00).matches(Self.nvme))
        #expect(!PCIMatch(classCode: 0x01_08_01).matches(Self.nvme))
        #expect(!PCIMatch(classCode: 0x02_00_00, classMask: 0xff_00_00).matches(Self.nvme))
    }
}
