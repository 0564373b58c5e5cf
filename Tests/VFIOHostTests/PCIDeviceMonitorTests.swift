import Foundation
import Glibc
import PCI
import Testing
@testable import VFIOHost
import VFIOKit

@Suite struct PCIDeviceMonitorTests {
    let address = try! PCIAddress(parsing: "0000:03:00.0")

    @Test func ueventsBecomeTypedEvents() throws {
        let nvme = try DriverName("nvme")
        #expect(PCIDeviceEvent(action: "add", sysname: "0000:03:00.0", driver: nil) == .added(address, driver: nil))
        #expect(PCIDeviceEvent(action: "add", sysname: "0000:03:00.0", driver: "nvme") == .added(address, driver: nvme))
        #expect(PCIDeviceEvent(action: "remove", sysname: "0000:03:00.0", driver: nil) == .removed(address))
        #expect(PCIDeviceEvent(action: "bind", sysname: "0000:03:00.0", driver: "vfio-pci") == .bound(address, driver: .vfioPCI))
        #expect(PCIDeviceEvent(action: "unbind", sysname: "0000:03:00.0", driver: nil) == .unbound(address))
        #expect(PCIDeviceEvent(action: "change", sysname: "0000:03:00.0", driver: "nvme") == .changed(address, driver: nvme))
        #expect(PCIDeviceEvent(action: "bind", sysname: "0000:03:00.0", driver: "vfio-pci")?.address == address)
    }

    @Test func eventsThatSayNothingUsableAreDropped() {
        #expect(PCIDeviceEvent(action: "move", sysname: "0000:03:00.0", driver: nil) == nil)
        #expect(PCIDeviceEvent(action: "add", sysname: "pci0000:00", driver: nil) == nil, "a root bus, not a function")
        #expect(PCIDeviceEvent(action: "bind", sysname: "0000:03:00.0", driver: nil) == nil, "bind names its driver")
        #expect(PCIDeviceEvent(action: "bind", sysname: "0000:03:00.0", driver: "../x") == nil)
    }

    @Test func monitorFileDescriptorIsNonBlockingAndQuiet() throws {
        let monitor = try PCIDeviceMonitor(source: .kernel)
        let flags = fcntl(monitor.fileDescriptor.rawValue, F_GETFL)
        #expect(flags & O_NONBLOCK != 0)
        // Nothing is pending on a quiet system; nextEvent must return at once.
        let start = Date()
        while monitor.nextEvent() != nil {}
        #expect(Date().timeIntervalSince(start) < 1)
    }

    /// A synthetic `change` uevent (what `udevadm trigger` sends) is harmless and reaches the
    /// kernel-source monitor. Needs root and a PCI device.
    @Test(.enabled(if: getuid() == 0 && hostHasPCI, "needs root and /sys/bus/pci to send a synthetic uevent"))
    func monitorSeesARealUevent() throws {
        let name = try #require(try FileManager.default.contentsOfDirectory(atPath: "/sys/bus/pci/devices").sorted().first)
        let target = try PCIAddress(parsing: name)
        let monitor = try PCIDeviceMonitor(source: .kernel)
        try "change".write(toFile: "/sys/bus/pci/devices/\(name)/uevent", atomically: false, encoding: .utf8)
        var seen: [PCIDeviceEvent] = []
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline, !seen.contains(where: { $0.address == target }) {
            var pfd = pollfd(fd: monitor.fileDescriptor.rawValue, events: Int16(POLLIN), revents: 0)
            _ = poll(&pfd, 1, 500)
            while let event = monitor.nextEvent() { seen.append(event) }
        }
        let driver = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/sys/bus/pci/devices/\(name)/driver"))
            .flatMap { try? DriverName(URL(fileURLWithPath: $0).lastPathComponent) }
        #expect(seen.contains(.changed(target, driver: driver)))
    }
}
