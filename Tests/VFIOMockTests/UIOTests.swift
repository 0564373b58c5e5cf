#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import Dispatch
import SystemPackage
import Testing
@testable import VFIOMock

@Suite struct UIOTests {
    private func setup() throws -> (MockKernel, MemoryBARDevice) {
        let k = MockKernel()
        let d = MemoryBARDevice()
        try k.plug(d, at: address("0000:06:00.0"), iommuGroup: 2, driver: .uioPCIGeneric)
        return (k, d)
    }

    private func readCount(_ k: MockKernel, _ fd: FileDescriptor) throws(Errno) -> Int32 {
        var v: Int32 = 0
        let n = try withUnsafeMutableBytes(of: &v) { (b) throws(Errno) -> Int in try k.read(fd, into: b) }
        #expect(n == 4)
        return v
    }

    private func writeConfig(_ k: MockKernel, _ fd: FileDescriptor, offset: Int64, _ value: UInt16) throws(Errno) {
        var v = value
        _ = try withUnsafeBytes(of: &v) { (b) throws(Errno) -> Int in try k.pwrite(fd, from: b, at: offset) }
    }

    @Test func sysfsLayout() throws {
        let (k, _) = try setup()
        #expect(try k.readLink("/sys/bus/pci/devices/0000:06:00.0/driver") == "../../../bus/pci/drivers/uio_pci_generic")
        #expect(try k.listDirectory("/sys/bus/pci/devices/0000:06:00.0/uio") == ["uio0"])
        #expect(try k.listDirectory("/sys/class/uio") == ["uio0"])
        #expect(try k.readText("/sys/class/uio/uio0/name") == "uio_pci_generic")
        #expect(try k.readLink("/sys/class/uio/uio0/device") == "../../../0000:06:00.0")
        #expect(try k.listDirectory("/sys/class/uio/uio0/maps") == ["map0"])
        #expect(try k.readText("/sys/class/uio/uio0/maps/map0/size") == "0x0000000000010000")
        let resource = try k.readText("/sys/bus/pci/devices/0000:06:00.0/resource").split(separator: "\n")
        #expect(resource.count == 13)
        #expect(resource[0].hasSuffix("0x0000000000040200"))
    }

    @Test func interruptCountMaskAndUnmaskThroughConfig() throws {
        let (k, device) = try setup()
        let bus = try #require(device.bus)
        let uio = try k.open("/dev/uio0", O_RDWR | O_NONBLOCK)
        let config = try k.open("/sys/bus/pci/devices/0000:06:00.0/config", O_RDWR)
        #expect(errno { try readCount(k, uio) } == .resourceTemporarilyUnavailable)
        // The handler masks INTx with the command register and counts the event.
        bus.setINTx(asserted: true)
        #expect(try readCount(k, uio) == 1)
        #expect(errno { try readCount(k, uio) } == .resourceTemporarilyUnavailable)
        #expect(k.physicalConfig(of: address("0000:06:00.0"))![5] & 0x4 != 0)
        // Clearing INTx-disable with the line still asserted fires again.
        try writeConfig(k, config, offset: 4, 0x0002)
        #expect(try readCount(k, uio) == 2)
        bus.setINTx(asserted: false)
        try writeConfig(k, config, offset: 4, 0x0002)
        #expect(errno { try readCount(k, uio) } == .resourceTemporarilyUnavailable)
        // The descriptor is pollable: epoll sees the next interrupt.
        let ep = try k.epollCreate()
        try k.epollControl(ep, EPOLL_CTL_ADD, uio, events: EPOLLIN.rawValue, data: 42)
        bus.setINTx(asserted: true)
        var events: UInt32 = 0, data: UInt64 = 0
        #expect(try k.epollWait(ep, events: &events, data: &data, capacity: 1, timeoutMilliseconds: 1000) == 1)
        #expect(data == 42)
        #expect(try readCount(k, uio) == 3)
        // uio_pci_generic has no irqcontrol; reads must be 4 bytes.
        var one: Int32 = 1
        #expect(errno { try withUnsafeBytes(of: &one) { (b) throws(Errno) -> Int in try k.write(uio, from: b) } } == .noFunction)
        var two: UInt16 = 0
        #expect(errno { try withUnsafeMutableBytes(of: &two) { (b) throws(Errno) -> Int in try k.read(uio, into: b) } } == .invalidArgument)
        try k.close(ep)
        try k.close(config)
        try k.close(uio)
        #expect(k.openFileCount == 0)
    }

    @Test func blockingReadWakesOnInterrupt() async throws {
        let (k, device) = try setup()
        let uio = try k.open("/dev/uio0", O_RDWR)
        let started = DispatchSemaphore(value: 0)
        let reader = Task.detached { () throws -> Int32 in
            started.signal()
            return try self.readCount(k, uio)
        }
        started.wait()
        usleep(20_000)
        device.bus!.setINTx(asserted: true)
        #expect(try await reader.value == 1)
    }

    @Test func resourceMapAndReleaseClearsBusMaster() throws {
        let (k, device) = try setup()
        let a = address("0000:06:00.0")
        let uio = try k.open("/dev/uio0", O_RDWR)
        let p = try k.mmap(length: 65536, protection: PROT_READ | PROT_WRITE, flags: MAP_SHARED, fd: uio, offset: 0)
        p.storeBytes(of: UInt32(9), toByteOffset: 16, as: UInt32.self)
        #expect(device.bus!.barMemory(0)!.bytes.load(fromByteOffset: 16, as: UInt32.self) == 9)
        #expect(errno { try k.mmap(length: 4096, protection: PROT_READ, flags: MAP_SHARED, fd: uio, offset: 4096) } == .invalidArgument)
        let res = try k.open("/sys/bus/pci/devices/0000:06:00.0/resource0", O_RDWR)
        let q = try k.mmap(length: 65536, protection: PROT_READ, flags: MAP_SHARED, fd: res, offset: 0)
        #expect(q.load(fromByteOffset: 16, as: UInt32.self) == 9)
        let config = try k.open("/sys/bus/pci/devices/0000:06:00.0/config", O_RDWR)
        try writeConfig(k, config, offset: 4, 0x0006)
        #expect(k.physicalConfig(of: a)![4] & 0x4 != 0)
        try k.close(uio)
        #expect(k.physicalConfig(of: a)![4] & 0x4 == 0)
        try k.munmap(p, length: 65536)
        try k.munmap(q, length: 65536)
        try k.close(res)
        try k.close(config)
    }
}

@Suite struct SysfsTests {
    @Test func linksListingsAndAttributes() throws {
        let k = MockKernel()
        try k.plug(EduDevice(), at: address("0000:00:04.0"), iommuGroup: 12)
        try k.plug(MemoryBARDevice(), at: address("0000:00:04.1"), iommuGroup: 12, driver: .none)
        #expect(try k.listDirectory("/sys/bus/pci/devices") == ["0000:00:04.0", "0000:00:04.1"])
        #expect(try k.readLink("/sys/bus/pci/devices/0000:00:04.0/iommu_group") == "../../../kernel/iommu_groups/12")
        #expect(try k.readLink("/sys/bus/pci/devices/0000:00:04.0/driver") == "../../../bus/pci/drivers/vfio-pci")
        #expect(errno { try k.readLink("/sys/bus/pci/devices/0000:00:04.1/driver") } == .noSuchFileOrDirectory)
        #expect(try k.listDirectory("/sys/kernel/iommu_groups/12/devices") == ["0000:00:04.0", "0000:00:04.1"])
        #expect(try k.readText("/sys/bus/pci/devices/0000:00:04.0/vendor") == "0x1234")
        #expect(try k.readText("/sys/bus/pci/devices/0000:00:04.0/device") == "0x11e8")
        #expect(try k.readText("/sys/bus/pci/devices/0000:00:04.0/class") == "0x00ff00")
        #expect(try k.listDirectory("/sys/bus/pci/devices/0000:00:04.0").contains("resource0"))
        #expect(errno { try k.readText("/sys/bus/pci/devices/0000:00:09.0/vendor") } == .noSuchFileOrDirectory)
        #expect(errno { try k.listDirectory("/home") } == .noSuchFileOrDirectory)
        #expect(errno { try k.writeText("/sys/bus/pci/devices/0000:00:04.0/vendor", "0x1") } == .badFileDescriptor)
        let config = try k.open("/sys/bus/pci/devices/0000:00:04.0/config", O_RDONLY)
        var id: UInt32 = 0
        _ = try withUnsafeMutableBytes(of: &id) { b in try k.pread(config, into: b, at: 0) }
        #expect(id == 0x11e8_1234)
        try k.close(config)
    }

    @Test func rebindingWithDriverOverride() throws {
        let k = MockKernel()
        let a = address("0000:00:05.0")
        try k.plug(MemoryBARDevice(), at: a, iommuGroup: 4, driver: .none)
        #expect(errno { try k.open("/dev/vfio/4", O_RDWR) } == .noSuchFileOrDirectory)
        try k.writeText("/sys/bus/pci/devices/0000:00:05.0/driver_override", "vfio-pci")
        #expect(try k.readText("/sys/bus/pci/devices/0000:00:05.0/driver_override") == "vfio-pci")
        try k.writeText("/sys/bus/pci/drivers_probe", "0000:00:05.0")
        #expect(try k.readLink("/sys/bus/pci/devices/0000:00:05.0/driver") == "../../../bus/pci/drivers/vfio-pci")
        let g = try k.open("/dev/vfio/4", O_RDWR)
        try k.close(g)
        try k.writeText("/sys/bus/pci/drivers/vfio-pci/unbind", "0000:00:05.0")
        #expect(errno { try k.open("/dev/vfio/4", O_RDWR) } == .noSuchFileOrDirectory)
        // The override still names vfio-pci: no other driver matches (pci_match_device).
        #expect(errno { try k.writeText("/sys/bus/pci/drivers/uio_pci_generic/bind", "0000:00:05.0") } == .operationNotSupportedByDevice)
        try k.writeText("/sys/bus/pci/devices/0000:00:05.0/driver_override", "uio_pci_generic")
        try k.writeText("/sys/bus/pci/drivers/uio_pci_generic/bind", "0000:00:05.0")
        #expect(try k.listDirectory("/sys/class/uio") == ["uio0"])
        #expect(errno { try k.writeText("/sys/bus/pci/drivers/vfio-pci/bind", "0000:00:05.0") } == .resourceBusy)
    }

    @Test func unbindingAnOpenDeviceRequestsItBack() throws {
        let s = try LegacySetup(MemoryBARDevice())
        let req = try s.eventfd()
        try s.setIRQs(index: VFIO_PCI_REQ_IRQ_INDEX, fds: [req.rawValue])
        #expect(errno { try s.kernel.writeText("/sys/bus/pci/drivers/vfio-pci/unbind", "0000:01:00.0") } == .resourceBusy)
        #expect(waitEvent(req) == 1)
    }
}
