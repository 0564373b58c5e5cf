#if canImport(Glibc)
import Glibc
#endif
import PCI
import Testing
import VFIODrivers
import VFIOKit
import VFIOMock
import CVFIO

/// Views keep what backs them alive, and a stale view is harmless: all ones, never a crash.
@Suite struct ViewLifetimeTests {
    enum Layout: RegisterLayout {
        static let extent = 0x100
        static var scratch: Register<Self, UInt32> { .init(0x40) }
    }

    /// What a driver helper might do: open, and return nothing but the registers.
    func registers(_ machine: MockMachine, backend: Backend) throws -> MMIO<Layout> {
        let device = try PCIDevice.open(MockMachine.primary, backend: backend, system: machine.kernel)
        return try device.bar(0).mmio(Layout.self)
    }

    @Test(arguments: [Backend.legacy, .iommufd, .uio])
    func aViewAloneKeepsTheDeviceOpen(_ backend: Backend) throws {
        let (machine, model) = try plugMemory(backend)
        do {
            let view = try registers(machine, backend: backend)
            #expect(view.isMapped)
            view.write(Layout.scratch, 0x1234_5678)
            #expect(view.read(Layout.scratch) == 0x1234_5678)
            #expect(try #require(model.bus).barMemory(0)!.bytes.load(fromByteOffset: 0x40, as: UInt32.self) == 0x1234_5678)
            #expect(machine.kernel.openFileCount > 0)
        }
        // The last view gone, the device closed itself.
        #expect(machine.kernel.openFileCount == 0)
    }

    @Test(arguments: [Backend.legacy, .iommufd, .uio])
    func aMappedViewReadsAllOnesAfterCloseAndItsWritesReachNoDevice(_ backend: Backend) throws {
        let (machine, model) = try plugMemory(backend)
        let device = try PCIDevice.open(MockMachine.primary, backend: backend, system: machine.kernel)
        let view = try device.bar(0).mmio(Layout.self)
        view.write(Layout.scratch, 0xaaaa_5555)
        #expect(view.region.liveness == .live)
        device.close()
        #expect(view.region.liveness == .closed)
        #expect(view.read(Layout.scratch) == 0xffff_ffff)
        // A stale write lands in private memory: it reads back, and the device never sees it.
        view.write(Layout.scratch, 0x0bad_0bad)
        #expect(view.read(Layout.scratch) == 0x0bad_0bad)
        let stale = try #require(view.region.pointer(covering: 0..<0x2000))
        cvfio_write64(stale + 0x48, 0)
        (stale + 0xffe).storeBytes(of: 0, as: UInt32.self)
        #expect(cvfio_read64(stale + 0x48) == 0 && cvfio_read32(stale + 0x1000) == 0xffff_0000)
        #expect(cvfio_read32(stale + 0x1004) == .max)
        // The device's registers kept what was written while it was open.
        let bus = try #require(model.bus)
        let bar = try #require(bus.barMemory(0)).bytes
        #expect(bar.load(fromByteOffset: 0x40, as: UInt32.self) == 0xaaaa_5555)
        #expect(bar.load(fromByteOffset: 0x48, as: UInt64.self) == 0 && bar.loadUnaligned(fromByteOffset: 0xffe, as: UInt32.self) == 0)
        #expect(throws: VFIOError.deviceClosed(MockMachine.primary, operation: "read of region 0 at 0x40")) {
            _ = try view.region.read(UInt32.self, at: 0x40)
        }
        #expect(throws: VFIOError.deviceClosed(MockMachine.primary, operation: "opening region 0")) { _ = try device.bar(0) }
        // Memory mapped after the close does not land in the retired range.
        let other = try machine.kernel.mmap(
            length: 1 << 16, protection: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS, fd: nil, offset: 0)
        defer { try? machine.kernel.munmap(other, length: 1 << 16) }
        #expect(view.region.pointer(covering: 0..<4).map { UInt(bitPattern: $0) } != UInt(bitPattern: other))
    }

    /// What vfio-pci does to a BAR mapping while the device's memory is disabled (a reset, a
    /// removal): the pages go, and the next access faults with SIGBUS. Here, a shared mapping
    /// of an empty memfd put over the area does the same.
    func revoke(_ address: UnsafeMutableRawPointer, length: Int) throws {
        let fd = cvfio_memfd_create("revoked-bar", 0)
        try #require(fd >= 0)
        defer { Glibc.close(fd) }
        let p = Glibc.mmap(address, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0)
        try #require(p == address)
    }

    @Test(arguments: [Backend.legacy, .iommufd, .uio])
    func aMappingTheKernelRevokesGoesStaleInsteadOfEndingTheProcess(_ backend: Backend) throws {
        let (machine, model) = try plugMemory(backend)
        let device = try PCIDevice.open(MockMachine.primary, backend: backend, system: machine.kernel)
        defer { device.close() }
        let view = try device.bar(0).mmio(Layout.self)
        view.write(Layout.scratch, 0x1234_5678)
        let area = try #require(view.region.info.mappableAreas.first)
        let mapping = try #require(view.region.pointer(covering: area))
        try revoke(mapping, length: area.count)
        // The SIGBUS makes the whole area private all-ones memory, and the read runs again there.
        #expect(view.read(Layout.scratch) == 0xffff_ffff)
        #expect(view.region.liveness == .revoked)
        let start = try #require(view.region.pointer(covering: area))
        #expect(cvfio_read64(start + area.count - 8) == .max)
        view.write(Layout.scratch, 0x0bad_0bad)
        #expect(view.read(Layout.scratch) == 0x0bad_0bad)
        #expect(try #require(model.bus).barMemory(0)!.bytes.load(fromByteOffset: 0x40, as: UInt32.self) == 0x1234_5678)
        // Closing after a revocation still retires the region.
        device.close()
        #expect(view.region.liveness == .closed && view.read(Layout.scratch) == 0xffff_ffff)
    }

    @Test func aTrappedViewReadsAllOnesAfterCloseAndNeverTouchesAReusedDescriptor() throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.edu(trapped: true), at: MockMachine.primary)
        let device = try PCIDevice.open(MockMachine.primary, backend: .legacy, system: machine.kernel)
        let view = try device.bar(0).mmio(EduRegisters.self)
        #expect(!view.isMapped)
        #expect(view.read(EduRegisters.identification) == 0x0100_00ed)
        device.close()
        // The next file opened takes the device's descriptor number; the view must not read it.
        let reused = try machine.kernel.open("/sys/bus/pci/devices/0000:01:00.0/config", O_RDONLY)
        defer { try? machine.kernel.close(reused) }
        let before = view.region.accessErrors
        #expect(view.read(EduRegisters.identification) == 0xffff_ffff)
        view.write(EduRegisters.liveness, 1)
        #expect(view.region.accessErrors == before + 2)
    }

    @Test func aViewSharedWithAnotherThreadIsSafeWhileTheDeviceCloses() async throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.memory(), at: MockMachine.primary)
        let device = try PCIDevice.open(MockMachine.primary, backend: .iommufd, system: machine.kernel)
        let view = try device.bar(0).mmio(Layout.self)
        #expect(view.read(Layout.scratch) == 0)
        let reader = Task.detached {
            // Reads until the close shows through; bounded, so a bug fails instead of hanging.
            for _ in 0..<1_000_000_000 where view.read(Layout.scratch) == 0xffff_ffff { return true }
            return false
        }
        device.close()
        #expect(await reader.value)
    }

    /// `vfiokit selftest`'s stale-view step checks the same promise on any device, mapped or
    /// trapped, and says where the stale write went.
    @Test func theSelftestStepChecksTheStaleViewPromise() throws {
        let mapped = StaleViewCheck.run(closing: try MockMachine().open(Devices.memory(), on: .legacy))
        #expect(
            mapped.description
                == "ok   stale view: after close, BAR 0 (mapped) read 0xffffffff; a write of 0x5a5a0000 through it landed in private memory (read back 0x5a5a0000); region closed"
        )
        let trapped = StaleViewCheck.run(closing: try MockMachine().open(Devices.edu(trapped: true), on: .legacy))
        #expect(
            trapped.description
                == "ok   stale view: after close, BAR 0 (trapped) read 0xffffffff; a write of 0x5a5a0000 through it failed (read back 0xffffffff); region closed"
        )
    }

    /// A machine with a memory-BAR device at the primary address, bound for `backend`.
    func plugMemory(_ backend: Backend) throws -> (MockMachine, MemoryBARDevice) {
        let machine = MockMachine()
        let model = Devices.memory()
        try machine.kernel.plug(model, at: MockMachine.primary, driver: backend == .uio ? .uioPCIGeneric : .vfioPCI)
        return (machine, model)
    }
}
