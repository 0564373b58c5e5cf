import PCI
import Testing
@testable import VFIOHost

@Suite struct DeviceUsageTests {
    let disk = try! PCIAddress(parsing: "0000:00:02.0")

    func makeHost() throws -> FakeHost {
        let host = try FakeHost()
        host.addDevice("0000:00:02.0", classCode: 0x018000, driver: nil)
        host.addBlock(under: "0000:00:02.0", path: "virtio1/block/vda", number: "254:0")
        host.addBlock(under: "0000:00:02.0", path: "virtio1/block/vda/vda1", number: "254:1")
        host.addBlock(under: "0000:00:02.0", path: "virtio1/block/vda/vda2", number: "254:2")
        // A disk on another controller, mounted: must not count.
        host.addDevice("0000:00:05.0", classCode: 0x018000)
        host.addBlock(under: "0000:00:05.0", path: "virtio3/block/vdb", number: "254:16")
        host.mount("254:16", at: "/srv")
        return host
    }

    func usage(_ host: FakeHost) throws -> DeviceUsage { try DeviceUsageScanner(tree: host.tree).usage(of: disk) }

    @Test func unusedDiskIsFree() throws {
        let usage = try usage(try makeHost())
        #expect(usage == DeviceUsage())
        #expect(!usage.isInUse)
    }

    @Test func wholeDiskMountIsFound() throws {
        let host = try makeHost()
        host.mount("254:0", at: "/")
        #expect(try usage(host).mounts == [.init(blockDevice: "vda", deviceNumber: "254:0", mountPoint: "/")])
    }

    @Test func partitionMountsAreFound() throws {
        let host = try makeHost()
        host.mount("254:1", at: "/boot")
        host.mount("254:2", at: "/mnt/with space")
        let mounts = try usage(host).mounts
        #expect(mounts.map(\.mountPoint) == ["/boot", "/mnt/with space"])
        #expect(mounts.map(\.blockDevice) == ["vda1", "vda2"])
    }

    @Test func filesystemsOnStackedDevicesAreFound() throws {
        let host = try makeHost()
        host.addStackedBlock("dm-0", number: "253:0", on: ["vda2"])
        host.addStackedBlock("md0", number: "9:0", on: ["dm-0"])
        host.mount("9:0", at: "/data")
        #expect(try usage(host).mounts == [.init(blockDevice: "md0", deviceNumber: "9:0", mountPoint: "/data")])
    }

    @Test func swapIsFound() throws {
        let host = try makeHost()
        host.swap(on: "vda1")
        host.swap(on: "vdb")
        #expect(try usage(host).swaps == ["vda1"])
        #expect(try usage(host).summary == "swap on vda1")
    }

    @Test func interfacesCountOnlyWhenUp() throws {
        let host = try FakeHost()
        host.addDevice("0000:00:03.0")
        host.addInterface(under: "0000:00:03.0", path: "virtio2/net/eth0", operstate: "down", flags: "0x1002")
        host.addInterface(under: "0000:00:03.0", path: "virtio2/net/eth1", operstate: "up", flags: "0x1003")
        host.addInterface(under: "0000:00:03.0", path: "virtio2/net/eth2", operstate: "unknown", flags: "0x1043")
        let usage = try DeviceUsageScanner(tree: host.tree).usage(of: try PCIAddress(parsing: "0000:00:03.0"))
        #expect(usage.upInterfaces == ["eth1", "eth2"])
    }

    @Test func mountInfoEscapesAreDecoded() {
        let table = MountTable(
            mountInfo: """
                27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
                41 27 254:2 / /mnt/a\\040b\\011c\\134d rw - ext4 /dev/vda2 rw
                short line
                """)
        #expect(table.mounts.map(\.mountPoint) == ["/", "/mnt/a b\tc\\d"])
        #expect(table.mounts(on: "254:2").count == 1)
    }
}
