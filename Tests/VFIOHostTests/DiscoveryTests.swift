import Foundation
import PCI
import Testing
@testable import VFIOHost
import VFIOKit

@Suite struct DiscoveryTests {
    @Test func readsDevicesAsSysfsShowsThem() throws {
        let host = try FakeHost()
        host.addDriver("pcieport")
        host.addDriver("nvme")
        host.addDevice("0000:00:1c.0", vendor: 0x8086, device: 0xa110, classCode: 0x060400, group: 7, numa: 0, driver: "pcieport")
        host.addDevice(
            "0000:03:00.0", vendor: 0x144d, device: 0xa808, classCode: 0x010802, parent: "0000:00:1c.0", group: 12, numa: 1,
            driver: "nvme", subsystem: (0x144d, 0xa801), revision: 0x02)
        host.addDevice("0000:00:1f.3", vendor: 0x8086, device: 0xa348, classCode: 0x040300)

        let devices = try host.discovery.devices()
        #expect(devices.map(\.address.description) == ["0000:00:1c.0", "0000:00:1f.3", "0000:03:00.0"])
        let nvme = devices[2]
        #expect(nvme.vendorID == 0x144d && nvme.deviceID == 0xa808)
        #expect(nvme.subsystemVendorID == 0x144d && nvme.subsystemDeviceID == 0xa801)
        #expect(nvme.classCode == 0x010802 && nvme.classID == 0x0108 && nvme.revision == 2)
        #expect(nvme.driver == (try DriverName("nvme")))
        #expect(nvme.driverOverride == nil)
        #expect(nvme.iommuGroup == 12 && nvme.numaNode == 1)
        // No driver, no IOMMU group, NUMA -1: all absent, none an error.
        let audio = devices[1]
        #expect(audio.driver == nil && audio.iommuGroup == nil && audio.numaNode == nil)
        #expect(try host.discovery.members(ofGroup: 12) == [PCIAddress(parsing: "0000:03:00.0")])
    }

    @Test func missingDeviceIsNamedWithWhatToDo() throws {
        let host = try FakeHost()
        let address = try PCIAddress(parsing: "0000:09:00.0")
        #expect(throws: HostAccessError.noSuchDevice(address)) { try host.discovery.device(address) }
        #expect(HostAccessError.noSuchDevice(address).description.contains("vfiokit list"))
    }

    @Test func malformedAttributeIsReportedNotTrusted() throws {
        let host = try FakeHost()
        let dir = host.addDevice("0000:00:02.0")
        host.write("\(dir)/vendor", "intel")
        #expect {
            try host.discovery.device(PCIAddress(parsing: "0000:00:02.0"))
        } throws: { error in
            guard case let .malformed(path, value, _) = error as? HostAccessError else { return false }
            return path.hasSuffix("0000:00:02.0/vendor") && value == "intel"
        }
    }

    @Test func driverOverrideIsReadBack() throws {
        let host = try FakeHost()
        let dir = host.addDevice("0000:00:02.0")
        host.write("\(dir)/driver_override", "vfio-pci")
        #expect(try host.discovery.device(PCIAddress(parsing: "0000:00:02.0")).driverOverride == .vfioPCI)
    }

    @Test func noIOMMUModeIsReadFromTheModuleParameter() throws {
        let host = try FakeHost()
        #expect(try host.discovery.noIOMMUModeEnabled() == false)
        host.enableNoIOMMUMode()
        #expect(try host.discovery.noIOMMUModeEnabled() == true)
    }

    @Test func barsComeFromTheResourceFile() throws {
        let host = try FakeHost()
        host.addDevice("0000:00:02.0")
        let bars = try host.discovery.bars(of: PCIAddress(parsing: "0000:00:02.0"))
        #expect(
            bars == [
                PCIBAR(index: 0, kind: .memory64, start: 0xfe00_0000, size: 0x4000, prefetchable: true),
                PCIBAR(index: 2, kind: .io, start: 0xe000, size: 0x20, prefetchable: false),
            ])
    }

    @Test func barParsingHandlesROMAndSkipsBridgeWindows() {
        let text = """
            0x00000000fd000000 0x00000000fdffffff 0x0000000000040200
            0x0000000000000000 0x0000000000000000 0x0000000000000000
            0x0000000000000000 0x0000000000000000 0x0000000000000000
            0x0000000000000000 0x0000000000000000 0x0000000000000000
            0x0000000000000000 0x0000000000000000 0x0000000000000000
            0x0000000000000000 0x0000000000000000 0x0000000000000000
            0x00000000000c0000 0x00000000000dffff 0x0000000000000212
            0x0000000000001000 0x0000000000001fff 0x0000000000000101
            """
        #expect(
            PCIBAR.parse(resourceFile: text) == [
                PCIBAR(index: 0, kind: .memory32, start: 0xfd00_0000, size: 0x100_0000, prefetchable: false),
                PCIBAR(index: 6, kind: .rom, start: 0xc0000, size: 0x20000, prefetchable: false),
            ])
        #expect(PCIBAR.parse(resourceFile: "0x1000 0x0fff 0x200") == nil, "end below start")
        #expect(PCIBAR.parse(resourceFile: "0x1000 0x1fff") == nil, "two columns")
        #expect(PCIBAR.parse(resourceFile: "4096 8191 512") == nil, "not hex")
    }

    @Test func resolveLinkStaysInsideTheRoot() throws {
        let host = try FakeHost()
        host.addDevice("0000:00:02.0")
        #expect(try host.tree.resolveLink("sys/bus/pci/devices/0000:00:02.0") == "sys/devices/pci0000:00/0000:00:02.0")
        #expect(try host.tree.resolveLink("sys/bus/pci/devices/0000:00:03.0") == nil)
        try FileManager.default.createSymbolicLink(atPath: host.root + "/sys/escape", withDestinationPath: "../../../../../etc")
        #expect(try host.tree.resolveLink("sys/escape") == "etc", "`..` cannot climb above the root")
    }

    @Test func driverNamesRejectPathTricks() {
        for bad in ["", ".", "..", "../nvme", "nvme/../../x", "a b", "vfio-pci\n"] {
            #expect(throws: DriverNameError.self) { try DriverName(bad) }
        }
        #expect(throws: Never.self) { try DriverName("snd_hda_intel") }
        #expect(throws: Never.self) { try DriverName("mlx5_vfio_pci") }
    }

    @Test func addressesWithPathTricksNeverReachSysfs() {
        for bad in ["../0000:00:02.0", "0000:00:02.0/..", "0000:00:02.0/../../../../etc", "..", "0000:00:02.0 ", "/"] {
            #expect(throws: PCIAddressError.self) { try PCIAddress(parsing: bad) }
        }
    }

    @Test func groupViabilityFollowsTheKernelsDriverManagedDMA() throws {
        for ok in ["vfio-pci", "pci-stub", "pcieport", "mlx5_vfio_pci", "virtio_vfio_pci"] {
            #expect(try DriverName(ok).keepsGroupViable, "\(ok)")
        }
        for blocking in ["snd_hda_intel", "nvme", "uio_pci_generic", "virtio-pci"] {
            #expect(try !DriverName(blocking).keepsGroupViable, "\(blocking)")
        }
    }
}
