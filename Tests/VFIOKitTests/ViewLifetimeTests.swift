#if canImport(Glibc)
import Glibc
#endif
import Foundation
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
        let machine = MockMachine()
        let model = Devices.memory()
        try machine.kernel.plug(model, at: MockMachine.primary, driver: backend == .uio ? .uioPCIGeneric : .vfioPCI)
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
    func aMappedViewReadsAllOnesAfterCloseAndItsWritesAreDropped(_ backend: Backend) throws {
        let machine = MockMachine()
        let model = Devices.memory()
        try machine.kernel.plug(model, at: MockMachine.primary, driver: backend == .uio ? .uioPCIGeneric : .vfioPCI)
        let device = try PCIDevice.open(MockMachine.primary, backend: backend, system: machine.kernel)
        let view = try device.bar(0).mmio(Layout.self)
        view.write(Layout.scratch, 0xaaaa_5555)
        device.close()
        #expect(view.read(Layout.scratch) == 0xffff_ffff)
        view.write(Layout.scratch, 0x0bad_0bad)
        #if arch(x86_64)
        #expect(view.read(Layout.scratch) == 0xffff_ffff)
        // Every width, and a write that straddles two pages, are dropped too.
        let stale = try #require(view.region.pointer(covering: 0..<0x2000))
        cvfio_write8(stale + 0x41, 0)
        cvfio_write64(stale + 0x48, 0)
        (stale + 0xffe).storeBytes(of: 0, as: UInt32.self)
        #expect(cvfio_read64(stale + 0x40) == .max && cvfio_read64(stale + 0x48) == .max)
        #expect(cvfio_read32(stale + 0xffc) == .max && cvfio_read32(stale + 0x1000) == .max)
        #endif
        // The device's register kept what was written while it was open.
        #expect(try #require(model.bus).barMemory(0)!.bytes.load(fromByteOffset: 0x40, as: UInt32.self) == 0xaaaa_5555)
        #expect(throws: VFIOError.deviceClosed(MockMachine.primary, operation: "read of region 0 at 0x40")) {
            _ = try view.region.read(UInt32.self, at: 0x40)
        }
        #expect(throws: VFIOError.deviceClosed(MockMachine.primary, operation: "opening region 0")) { _ = try device.bar(0) }
        // Memory mapped after the close does not land in the retired range.
        let other = try machine.kernel.mmap(length: 1 << 16, protection: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS, fd: nil, offset: 0)
        defer { try? machine.kernel.munmap(other, length: 1 << 16) }
        #expect(view.region.pointer(covering: 0..<4).map { UInt(bitPattern: $0) } != UInt(bitPattern: other))
    }

    #if arch(x86_64)
    @Test func staleWritesFromSeveralThreadsAtOnceAreAllDropped() throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.memory(), at: MockMachine.primary)
        let device = try PCIDevice.open(MockMachine.primary, backend: .legacy, system: machine.kernel)
        let view = try device.bar(0).mmio(Layout.self)
        device.close()
        let writers = (0..<3).map { n in
            Thread {
                for i in 0..<5_000 { view.write(Layout.scratch, UInt32(n * 100_000 + i)) }
            }
        }
        writers.forEach { $0.start() }
        while writers.contains(where: { !$0.isFinished }) { usleep(1000) }
        #expect(view.read(Layout.scratch) == 0xffff_ffff)
    }
    #endif

    @Test func aTrappedViewReadsAllOnesAfterCloseAndNeverTouchesAReusedDescriptor() throws {
        let machine = MockMachine()
        try machine.kernel.plug(Devices.edu(), at: MockMachine.primary)
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
}
