import PCI
import SystemPackage
import Testing
import VFIOKit
import VFIOMock

/// A failed system call is a value: the call, the file and the device are fields to compare,
/// and its text is the one messages have always shown.
@Suite struct SystemCallTests {
    static let device = pciAddress("0000:03:00.0")

    @Test func theTextNamesTheCallItsFileAndItsDevice() {
        #expect(SystemCall("open", path: "/dev/vfio/5", device: Self.device).description == "open /dev/vfio/5 for 0000:03:00.0")
        #expect(SystemCall("pread", device: Self.device, detail: "region 0 at 0x40").description == "pread of 0000:03:00.0 region 0 at 0x40")
        #expect(
            SystemCall("VFIO_DEVICE_SET_IRQS", device: Self.device, detail: "MSI-X, start 0, count 4").description
                == "VFIO_DEVICE_SET_IRQS(0000:03:00.0, MSI-X, start 0, count 4)")
        #expect(SystemCall("VFIO_GROUP_GET_STATUS", path: "/dev/vfio/5").description == "VFIO_GROUP_GET_STATUS(/dev/vfio/5)")
        #expect(SystemCall("IOMMU_IOAS_ALLOC").description == "IOMMU_IOAS_ALLOC")
        #expect(SystemCall("IOMMU_IOAS_ALLOC").isIoctl && !SystemCall("open").isIoctl)
    }

    @Test func aFailedOpenCarriesItsCallFileAndDevice() throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.memory(), at: MockMachine.primary, iommuGroup: 5)
        try machine.kernel.plug(Devices.memory(), at: MockMachine.sibling, iommuGroup: 5)
        let first = try PCIDevice.open(MockMachine.primary, backend: .legacy, system: machine.kernel)
        defer { first.close() }
        let error = #expect(throws: VFIOError.self) {
            _ = try PCIDevice.open(MockMachine.sibling, backend: .legacy, system: machine.kernel)
        }
        guard case let .systemCall(call, errno)? = error else {
            Issue.record("expected a failed system call, got \(String(describing: error))")
            return
        }
        #expect(call.name == "open" && call.path == "/dev/vfio/5" && call.device == MockMachine.sibling && errno == .resourceBusy)
    }
}
