import PCI
import Testing
import VFIOKit

/// The one owner of the kernel's file layout: each path as the kernel spells it, and names that
/// could climb out of their directory refused before they reach one.
@Suite struct SysfsLayoutTests {
    static let device = pciAddress("0000:03:00.0")

    @Test func pathsAreTheKernels() throws {
        let vfio3 = try #require(KernelName(listed: "vfio3")), uio0 = try #require(KernelName(listed: "uio0"))
        #expect(SysfsLayout.device(Self.device, .iommuGroup) == "sys/bus/pci/devices/0000:03:00.0/iommu_group")
        #expect(SysfsLayout.device(Self.device, .vfioDev) == "sys/bus/pci/devices/0000:03:00.0/vfio-dev")
        #expect(SysfsLayout.resource(Self.device, bar: 2) == "sys/bus/pci/devices/0000:03:00.0/resource2")
        #expect(SysfsLayout.vfioGroupNode(12, noIOMMU: false) == "dev/vfio/12")
        #expect(SysfsLayout.vfioGroupNode(12, noIOMMU: true) == "dev/vfio/noiommu-12")
        #expect(SysfsLayout.vfioDeviceNode(vfio3) == "dev/vfio/devices/vfio3")
        #expect(SysfsLayout.uioNode(uio0) == "dev/uio0")
        #expect(SysfsLayout.uioEvent(uio0) == "sys/class/uio/uio0/event")
        #expect(SysfsLayout.processFiles(42) == "proc/42/fd")
        #expect(SysfsLayout.absolute(SysfsLayout.iommufd) == "/dev/iommu")
        #expect(IOMMUMode.type1.containerPath == SysfsLayout.absolute(SysfsLayout.vfioContainer))
    }

    @Test func listedNamesThatCouldClimbOutAreRefused() {
        for bad in ["", ".", "..", "a/b", "../vfio"] { #expect(KernelName(listed: bad) == nil, "\(bad)") }
        #expect(KernelName(listed: "dm-0")?.rawValue == "dm-0")
    }
}
