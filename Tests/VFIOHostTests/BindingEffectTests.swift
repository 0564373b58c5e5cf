import Foundation
import PCI
import Testing
@testable import VFIOHost
import VFIOKit

/// Binding and unbinding against the fake kernel: the writes made, where the driver link
/// ends up, and what the state file remembers.
@Suite struct BindingEffectTests {
    let nvme = FakeHost.nvme
    let audio = FakeHost.audio

    @Test func bindWritesOverrideUnbindsAndProbes() throws {
        let host = try FakeHost.sharingAGroup()
        let (_, changes) = try host.binding().bind(BindRequest(addresses: [nvme], wholeGroup: true))
        #expect(host.driver(of: "0000:03:00.0") == "vfio-pci")
        #expect(host.driver(of: "0000:03:00.1") == "vfio-pci")
        #expect(host.read("sys/bus/pci/devices/0000:03:00.0/driver_override") == "vfio-pci")
        #expect(changes.map(\.to) == [.vfioPCI, .vfioPCI])
        #expect(changes.map(\.from) == [try DriverName("nvme"), try DriverName("snd_hda_intel")])
        let dev = "sys/devices/pci0000:00/0000:00:1c.0/0000:03:00.0"
        #expect(
            Array(host.kernel.log.prefix(3)) == [
                "\(dev)/driver_override=vfio-pci",
                "sys/bus/pci/drivers/nvme/unbind=0000:03:00.0",
                "sys/bus/pci/drivers_probe=0000:03:00.0",
            ])
        #expect(
            try host.store.load() == [
                nvme: BindingRecord(originalDriver: try DriverName("nvme"), boundTo: .vfioPCI),
                audio: BindingRecord(originalDriver: try DriverName("snd_hda_intel"), boundTo: .vfioPCI),
            ])
    }

    @Test func unbindRestoreGivesTheOriginalDriverBack() throws {
        let host = try FakeHost.sharingAGroup()
        _ = try host.binding().bind(BindRequest(addresses: [nvme], wholeGroup: true))
        let (plan, changes) = try host.binding().unbind(UnbindRequest(addresses: [nvme, audio], restore: true))
        #expect(plan.steps.map(\.restore) == [.driver(try DriverName("nvme")), .driver(try DriverName("snd_hda_intel"))])
        #expect(host.driver(of: "0000:03:00.0") == "nvme")
        #expect(host.driver(of: "0000:03:00.1") == "snd_hda_intel")
        #expect(host.read("sys/bus/pci/devices/0000:03:00.0/driver_override") == "(null)")
        #expect(changes.map(\.to) == [try DriverName("nvme"), try DriverName("snd_hda_intel")])
        #expect(host.kernel.log.contains("sys/bus/pci/drivers/nvme/bind=0000:03:00.0"))
        #expect(try host.store.load().isEmpty, "restored devices are forgotten")
    }

    @Test func plainUnbindLeavesTheDeviceFreeAndKeepsTheRecord() throws {
        let host = try FakeHost.sharingAGroup()
        _ = try host.binding().bind(BindRequest(addresses: [nvme, audio]))
        _ = try host.binding().unbind(UnbindRequest(addresses: [nvme]))
        #expect(host.driver(of: "0000:03:00.0") == nil)
        #expect(host.read("sys/bus/pci/devices/0000:03:00.0/driver_override") == "(null)")
        #expect(try host.store.load()[nvme]?.originalDriver == (try DriverName("nvme")))

        _ = try host.binding().unbind(UnbindRequest(addresses: [nvme], restore: true))
        #expect(host.driver(of: "0000:03:00.0") == "nvme")
        #expect(try host.store.load()[nvme] == nil)
    }

    @Test func rebindingKeepsTheFirstOriginalDriver() throws {
        let host = try FakeHost.sharingAGroup()
        _ = try host.binding().bind(BindRequest(addresses: [nvme, audio]))
        _ = try host.binding().unbind(UnbindRequest(addresses: [nvme]))
        _ = try host.binding().bind(BindRequest(addresses: [nvme, audio], driver: .uioPCIGeneric))
        #expect(host.driver(of: "0000:03:00.0") == "uio_pci_generic")
        #expect(try host.store.load()[nvme]?.originalDriver == (try DriverName("nvme")))
    }

    @Test func restoreWithoutRecordLetsTheKernelProbe() throws {
        let host = try FakeHost.sharingAGroup()
        host.addDevice("0000:00:04.0", classCode: 0x010802, group: 4, driver: "vfio-pci")
        let address = try PCIAddress(parsing: "0000:00:04.0")
        let (plan, _) = try host.binding().unbind(UnbindRequest(addresses: [address], restore: true))
        #expect(plan.steps.map(\.restore) == [.probe])
        #expect(plan.warnings == [.noRecordedDriver(address)])
        #expect(host.driver(of: "0000:00:04.0") == "nvme", "the kernel matched nvme by class")
    }

    @Test func restoreOfDriverlessOriginalLeavesItDriverless() throws {
        let host = try FakeHost.sharingAGroup()
        host.addDevice("0000:00:05.0", classCode: 0xff0000, group: 5)
        let address = try PCIAddress(parsing: "0000:00:05.0")
        _ = try host.binding().bind(BindRequest(addresses: [address]))
        #expect(host.driver(of: "0000:00:05.0") == "vfio-pci")
        #expect(try host.store.load()[address] == BindingRecord(originalDriver: nil, boundTo: .vfioPCI))
        _ = try host.binding().unbind(UnbindRequest(addresses: [address], restore: true))
        #expect(host.driver(of: "0000:00:05.0") == nil)
        #expect(try host.store.load()[address] == nil)
    }

    @Test func failedProbeGivesTheDeviceBack() throws {
        let host = try FakeHost.sharingAGroup()
        host.kernel.failProbes(of: "vfio-pci")
        #expect {
            try host.binding().bind(BindRequest(addresses: [nvme], wholeGroup: true))
        } throws: { error in
            guard case let .failed(.didNotBind(address, driver, now, rollback, completed)) = error as? BindError else { return false }
            return address == nvme && driver == .vfioPCI && now == nil && rollback == "it is back on nvme" && completed.isEmpty
        }
        #expect(host.driver(of: "0000:03:00.0") == "nvme")
        #expect(host.read("sys/bus/pci/devices/0000:03:00.0/driver_override") == "(null)")
        #expect(try host.store.load().isEmpty)
        #expect(host.driver(of: "0000:03:00.1") == "snd_hda_intel", "the bind stopped at the first failure")
    }

    @Test func unbindRefusesAHostDriverUnlessForced() throws {
        let host = try FakeHost.sharingAGroup()
        let request = UnbindRequest(addresses: [nvme])
        #expect(throws: BindError.refused(BindRefusal(problems: [.boundToHostDriver(nvme, try DriverName("nvme"))]))) {
            try host.binding().unbind(request)
        }
        #expect(host.driver(of: "0000:03:00.0") == "nvme")
        var forced = request
        forced.force = true
        let (plan, _) = try host.binding().unbind(forced)
        #expect(plan.warnings == [.forcedUnbindOfHostDriver(nvme, try DriverName("nvme"))])
        #expect(host.driver(of: "0000:03:00.0") == nil)
    }

    @Test func restoreRefusesWhenTheOriginalDriverIsGone() throws {
        let host = try FakeHost.sharingAGroup()
        _ = try host.binding().bind(BindRequest(addresses: [nvme, audio]))
        try FileManager.default.removeItem(atPath: host.root + "/sys/bus/pci/drivers/nvme")
        let problem = BindProblem.originalDriverNotLoaded(nvme, try DriverName("nvme"))
        #expect(throws: BindError.refused(BindRefusal(problems: [problem]))) {
            try host.binding().unbind(UnbindRequest(addresses: [nvme], restore: true))
        }
        #expect(problem.description.contains("modprobe nvme"))
        #expect(host.driver(of: "0000:03:00.0") == "vfio-pci", "nothing was written")
    }

    @Test func restoreOfADeviceAlreadyBackOnItsDriverOnlyDropsTheRecord() throws {
        let host = try FakeHost.sharingAGroup()
        try host.store.update { $0[self.nvme] = BindingRecord(originalDriver: try! DriverName("nvme"), boundTo: .vfioPCI) }
        let (plan, changes) = try host.binding().unbind(UnbindRequest(addresses: [nvme], restore: true))
        #expect(plan.alreadyRestored == [nvme] && changes.isEmpty)
        #expect(host.kernel.log.isEmpty)
        #expect(try host.store.load().isEmpty)
    }

    @Test func bindOfMissingDeviceWritesNothing() throws {
        let host = try FakeHost.sharingAGroup()
        let ghost = try PCIAddress(parsing: "0000:42:00.0")
        #expect(throws: BindError.refused(BindRefusal(problems: [.noSuchDevice(ghost)]))) {
            try host.binding().bind(BindRequest(addresses: [ghost]))
        }
        #expect(host.kernel.log.isEmpty)
    }

    @Test func failedWriteIsReportedAndTheRecordKept() throws {
        let host = try FakeHost.sharingAGroup()
        // A kernel without driver_override (before 3.16) has no such file.
        try FileManager.default.removeItem(atPath: host.root + "/sys/devices/pci0000:00/0000:00:1c.0/0000:03:00.0/driver_override")
        #expect {
            try host.binding().bind(BindRequest(addresses: [nvme], wholeGroup: true))
        } throws: { error in
            guard case let .failed(.write(.unwritable(path, value, errno), rollback?, completed)) = error as? BindError else {
                return false
            }
            return path.hasSuffix("0000:03:00.0/driver_override") && value == "vfio-pci" && errno == .noSuchFileOrDirectory
                && rollback.hasPrefix("giving it back to nvme failed too") && completed.isEmpty
        }
        #expect(host.driver(of: "0000:03:00.0") == "nvme", "nothing else was written")
        #expect(try host.store.load()[nvme]?.originalDriver == (try DriverName("nvme")), "the record survives for a later restore")
    }
}
