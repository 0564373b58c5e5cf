import PCI
import Testing
import VFIOKit

/// A failed system call is a value: the call, the file and the device are fields to compare
/// (``IOMMUContextTests`` matches a refused group open by them), and its text is the one
/// messages have always shown.
@Suite struct SystemCallTests {
    static let device = pciAddress("0000:03:00.0")

    @Test func theTextNamesTheCallItsFileAndItsDevice() {
        #expect(SystemCall("open", path: "/dev/vfio/5", device: Self.device).description == "open /dev/vfio/5 for 0000:03:00.0")
        #expect(
            SystemCall("pread", device: Self.device, detail: "region 0 at 0x40").description == "pread of 0000:03:00.0 region 0 at 0x40")
        #expect(
            SystemCall("VFIO_DEVICE_SET_IRQS", device: Self.device, detail: "MSI-X, start 0, count 4").description
                == "VFIO_DEVICE_SET_IRQS(0000:03:00.0, MSI-X, start 0, count 4)")
        #expect(SystemCall("VFIO_GROUP_GET_STATUS", path: "/dev/vfio/5").description == "VFIO_GROUP_GET_STATUS(/dev/vfio/5)")
        #expect(SystemCall("IOMMU_IOAS_ALLOC").description == "IOMMU_IOAS_ALLOC")
        #expect(SystemCall("IOMMU_IOAS_ALLOC").isIoctl && !SystemCall("open").isIoctl)
    }
}
