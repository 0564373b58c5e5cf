import PCI
import Testing
@testable import VFIOHost
import VFIOKit

/// Every refusal and warning, decided from a fake host's sysfs (nothing is written).
@Suite struct BindPolicyTests {
    let nvme = FakeHost.nvme
    let audio = FakeHost.audio

    func refusal(_ host: FakeHost, _ request: BindRequest) -> [BindProblem] {
        do {
            _ = try host.binding().planBind(request)
            return []
        } catch {
            guard case let .refused(refusal) = error else { return [] }
            return refusal.problems
        }
    }

    @Test func nonexistentAddressIsRefused() throws {
        let host = try FakeHost.sharingAGroup()
        let ghost = try PCIAddress(parsing: "0000:42:00.0")
        let problems = refusal(host, BindRequest(addresses: [ghost]))
        #expect(problems == [.noSuchDevice(ghost)])
        #expect(problems[0].description.contains("run `vfiokit list`"))
    }

    @Test func unloadedDriverIsRefusedAndNothingIsLoaded() throws {
        let host = try FakeHost()
        host.addDevice("0000:00:02.0", group: 1)
        let problems = refusal(host, BindRequest(addresses: [try PCIAddress(parsing: "0000:00:02.0")]))
        #expect(problems == [.driverNotLoaded(.vfioPCI)])
        #expect(problems[0].description.contains("modprobe vfio-pci"))
    }

    @Test func groupWithAHostDriverIsNotViable() throws {
        let host = try FakeHost.sharingAGroup()
        let problems = refusal(host, BindRequest(addresses: [nvme]))
        #expect(problems == [.groupNotViable(group: 12, member: audio, driver: try DriverName("snd_hda_intel"))])
        #expect(
            problems[0].description
                == "group 12 is not viable: 0000:03:00.1 is bound to snd_hda_intel; bind it to vfio-pci too or use --whole-group")
    }

    @Test func wholeGroupTakesTheOtherMembersToo() throws {
        let host = try FakeHost.sharingAGroup()
        let plan = try host.binding().planBind(BindRequest(addresses: [nvme], wholeGroup: true))
        #expect(plan.steps.map(\.address) == [nvme, audio])
        #expect(plan.steps.map(\.currentDriver) == [try DriverName("nvme"), try DriverName("snd_hda_intel")])
        #expect(plan.warnings == [.addedGroupMember(audio, group: 12, driver: try DriverName("snd_hda_intel"))])
    }

    @Test func bridgesDriverlessAndStubMembersDoNotBlock() throws {
        let host = try FakeHost()
        for driver in ["vfio-pci", "pcieport", "pci-stub", "nvme"] { host.addDriver(driver) }
        host.addDevice("0000:00:1c.0", classCode: 0x060400, group: 5, driver: "pcieport")
        host.addDevice("0000:00:1c.1", classCode: 0x060400, group: 5)
        host.addDevice("0000:00:1c.2", group: 5, driver: "pci-stub")
        host.addDevice("0000:00:1c.3", group: 5, driver: "vfio-pci")
        host.addDevice("0000:00:1c.4", group: 5, driver: "nvme")
        let target = try PCIAddress(parsing: "0000:00:1c.4")
        let plan = try host.binding().planBind(BindRequest(addresses: [target]))
        #expect(plan.steps.map(\.address) == [target])
        #expect(plan.warnings.isEmpty)
    }

    @Test func deviceWithoutIOMMUGroupIsRefusedOutsideNoIOMMUMode() throws {
        let host = try FakeHost()
        host.addDriver("vfio-pci")
        host.addDevice("0000:00:03.0", driver: nil)
        let address = try PCIAddress(parsing: "0000:00:03.0")
        let problems = refusal(host, BindRequest(addresses: [address]))
        #expect(problems == [.noIOMMUGroup(address)])
        #expect(problems[0].description.contains("intel_iommu=on"))
        #expect(problems[0].description.contains("enable_unsafe_noiommu_mode"))

        host.enableNoIOMMUMode()
        let plan = try host.binding().planBind(BindRequest(addresses: [address]))
        #expect(plan.warnings == [.noIOMMU(address)])
        #expect(plan.warnings[0].description.hasPrefix("!!!"))
        #expect(plan.warnings[0].description.contains("/dev/vfio/noiommu-N"))
    }

    @Test func uioNeedsNoIOMMUGroupAndNoViableGroup() throws {
        let host = try FakeHost.sharingAGroup()
        host.addDevice("0000:00:03.0")
        let plan = try host.binding(memlock: .bytes(8 << 20)).planBind(
            BindRequest(addresses: [nvme, try PCIAddress(parsing: "0000:00:03.0")], driver: .uioPCIGeneric))
        #expect(plan.steps.count == 2)
        #expect(plan.warnings.isEmpty, "no group rule and no memlock rule for UIO")
    }

    @Test func mountedFilesystemBlocksUnlessForced() throws {
        let host = try FakeHost.sharingAGroup()
        host.addBlock(under: "0000:03:00.0", path: "nvme/nvme0/nvme0n1", number: "259:0", parent: "0000:00:1c.0")
        host.addBlock(under: "0000:03:00.0", path: "nvme/nvme0/nvme0n1/nvme0n1p2", number: "259:2", parent: "0000:00:1c.0")
        host.mount("259:2", at: "/home")
        let request = BindRequest(addresses: [nvme], wholeGroup: true)
        let problems = refusal(host, request)
        guard case let .inUse(address, usage) = problems.first, problems.count == 1 else {
            Issue.record("expected one in-use refusal, got \(problems)")
            return
        }
        #expect(address == nvme)
        #expect(usage.mounts == [.init(blockDevice: "nvme0n1p2", deviceNumber: "259:2", mountPoint: "/home")])
        #expect(problems[0].description.contains("/home mounted from nvme0n1p2"))
        #expect(problems[0].description.contains("--force"))

        var forced = request
        forced.force = true
        let plan = try host.binding().planBind(forced)
        #expect(plan.steps.map(\.address) == [nvme, audio])
        #expect(plan.warnings.contains(.forcedWhileInUse(nvme, usage)))
    }

    @Test func upInterfaceBlocksUnlessForced() throws {
        let host = try FakeHost()
        host.addDriver("vfio-pci")
        host.addDriver("virtio-pci")
        host.addDevice("0000:00:03.0", group: 3, driver: "virtio-pci")
        host.addInterface(under: "0000:00:03.0", path: "virtio2/net/eth0", operstate: "up", flags: "0x1003")
        let address = try PCIAddress(parsing: "0000:00:03.0")
        #expect(refusal(host, BindRequest(addresses: [address])) == [.inUse(address, DeviceUsage(upInterfaces: ["eth0"]))])
        #expect(throws: Never.self) { try host.binding().planBind(BindRequest(addresses: [address], force: true)) }
    }

    @Test func everyProblemIsListedAtOnce() throws {
        let host = try FakeHost.sharingAGroup()
        host.addInterface(under: "0000:03:00.0", path: "net/enp3s0", operstate: "unknown", flags: "0x1003", parent: "0000:00:1c.0")
        let ghost = try PCIAddress(parsing: "0000:42:00.0")
        let problems = refusal(host, BindRequest(addresses: [nvme, ghost]))
        #expect(problems.count == 3)
        #expect(problems.contains(.noSuchDevice(ghost)))
        #expect(problems.contains(.groupNotViable(group: 12, member: audio, driver: try DriverName("snd_hda_intel"))))
        #expect(problems.contains(.inUse(nvme, DeviceUsage(upInterfaces: ["enp3s0"]))), "IFF_UP alone counts as up")
        #expect(BindRefusal(problems: problems).description.hasPrefix("refused for 3 reasons:"))
    }

    @Test func memlockBelowPinSizeWarnsWithHowToRaiseIt() throws {
        let host = try FakeHost.sharingAGroup()
        let request = BindRequest(addresses: [nvme], wholeGroup: true, pinSize: 256 << 20)
        let plan = try host.binding(memlock: .bytes(8 << 20)).planBind(request)
        let warning = BindWarning.memlockBelowPinSize(limit: 8 << 20, pinSize: 256 << 20)
        #expect(plan.warnings.contains(warning))
        #expect(warning.description.contains("RLIMIT_MEMLOCK is 8 MiB"))
        #expect(warning.description.contains("ulimit -l 262144"))
        #expect(warning.description.contains("limits.conf"))
        #expect(warning.description.contains("LimitMEMLOCK="))

        let enough = try host.binding(memlock: .bytes(256 << 20)).planBind(request)
        #expect(!enough.warnings.contains { if case .memlockBelowPinSize = $0 { true } else { false } })
        let unlimited = try host.binding(memlock: .unlimited).planBind(request)
        #expect(!unlimited.warnings.contains { if case .memlockBelowPinSize = $0 { true } else { false } })
    }

    @Test func alreadyBoundDevicesNeedNoWrites() throws {
        let host = try FakeHost()
        host.addDriver("vfio-pci")
        host.addDevice("0000:00:04.0", group: 4, driver: "vfio-pci")
        let plan = try host.binding().planBind(BindRequest(addresses: [try PCIAddress(parsing: "0000:00:04.0")]))
        #expect(plan.steps.isEmpty)
        #expect(plan.alreadyBound == [try PCIAddress(parsing: "0000:00:04.0")])
    }

    @Test func byteSizesParse() {
        #expect(parseByteSize("65536") == 65536)
        #expect(parseByteSize("64M") == 64 << 20)
        #expect(parseByteSize("2g") == 2 << 30)
        #expect(parseByteSize("512K") == 512 << 10)
        #expect(parseByteSize("") == nil)
        #expect(parseByteSize("M") == nil)
        #expect(parseByteSize("-1M") == nil)
        #expect(parseByteSize("99999999999999T") == nil, "overflow")
        #expect(formatByteSize(64 << 20) == "64 MiB")
        #expect(formatByteSize(1536 << 20) == "1.5 GiB")
        #expect(formatByteSize(100) == "100 bytes")
    }
}
