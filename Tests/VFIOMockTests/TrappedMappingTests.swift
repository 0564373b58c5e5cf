#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import Dispatch
import Synchronization
import SystemPackage
import Testing
@testable import VFIOMock

/// A test model with one register BAR: BAR 0, 16 KiB, mappable.
private protocol OneRegisterBAR: SimulatedDevice {}

extension OneRegisterBAR {
    var description: DeviceDescription {
        DeviceDescription(
            vendorID: 0x1b36, deviceID: 0x0005, classCode: 0x00ff00,
            bars: [BARDescription(index: 0, size: 0x4000, backing: .registers)], interruptPin: 0)
    }
    func attach(to bus: DeviceBus) {}
    func reset() {}
}

/// A register BAR that records every access its model sees and reads back a fixed pattern.
private final class RegisterRecorder: OneRegisterBAR {
    static let pattern: UInt64 = 0x8877_6655_4433_2211
    let accesses = Mutex<[String]>([])

    func readRegister(bar: Int, offset: Int, width: Int) -> UInt64 {
        accesses.withLock { $0.append("r 0x\(String(offset, radix: 16)) \(width)") }
        return width == 8 ? Self.pattern : Self.pattern & ((1 << UInt64(width * 8)) - 1)
    }
    func writeRegister(bar: Int, offset: Int, width: Int, value: UInt64) {
        accesses.withLock { $0.append("w 0x\(String(offset, radix: 16)) \(width) 0x\(String(value, radix: 16))") }
    }
}

/// A register BAR whose store at offset 0 starts a thread, as a model handing work to a new
/// Dispatch worker does: the thread records whether SIGSEGV is blocked in it and, if not,
/// loads offset 0x10 through the same mapping (which reads 0x10).
private final class ThreadStartingDevice: OneRegisterBAR {
    struct Seen {
        var sigsegvBlocked: Bool
        var value: UInt32?
    }
    /// The mapping's address, set by the test once it is mapped.
    let mapping = Mutex<UInt>(0)
    let thread = Mutex<pthread_t?>(nil)
    let seen = Mutex<Seen?>(nil)

    func readRegister(bar: Int, offset: Int, width: Int) -> UInt64 { UInt64(offset) }
    func writeRegister(bar: Int, offset: Int, width: Int, value: UInt64) {
        guard offset == 0 else { return }
        let start: @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? = { raw in
            Unmanaged<ThreadStartingDevice>.fromOpaque(raw!).takeRetainedValue().runStartedThread()
            return nil
        }
        let retained = Unmanaged.passRetained(self)
        var t = pthread_t()
        guard pthread_create(&t, nil, start, retained.toOpaque()) == 0 else { return retained.release() }
        thread.withLock { $0 = t }
    }

    private func runStartedThread() {
        var mask = sigset_t()
        pthread_sigmask(SIG_SETMASK, nil, &mask)
        let blocked = sigismember(&mask, SIGSEGV) == 1
        // A blocked SIGSEGV on a trapped access would end the process, so the load is made
        // only where it can be answered.
        let value = blocked ? nil : cvfio_read32(UnsafeRawPointer(bitPattern: mapping.withLock { $0 })! + 0x10)
        seen.withLock { $0 = Seen(sigsegvBlocked: blocked, value: value) }
    }
}

/// A register BAR whose loads wait in the model until the test lets them go.
private final class HeldLoadDevice: OneRegisterBAR {
    /// Signalled when a load has reached the model.
    let entered = DispatchSemaphore(value: 0)
    /// Lets the load return.
    let release = DispatchSemaphore(value: 0)

    func readRegister(bar: Int, offset: Int, width: Int) -> UInt64 {
        entered.signal()
        release.wait()
        return 0x1234_5678
    }
    func writeRegister(bar: Int, offset: Int, width: Int, value: UInt64) {}
}

@Suite struct TrappedMappingTests {
    private func mapBAR0(_ s: LegacySetup, length: Int = 0x4000) throws -> UnsafeMutableRawPointer {
        try s.kernel.mmap(length: length, protection: PROT_READ | PROT_WRITE, flags: MAP_SHARED, fd: s.device, offset: 0)
    }

    /// Every load and store through the mapping reaches the model once, with the width the
    /// CPU used: a repeated store of the same value is two writes (a doorbell rung twice),
    /// which memory the model polled could not show.
    @Test func everyAccessThroughTheMappingReachesTheModel() throws {
        guard TrappedMapping.supported else { return }
        let model = RegisterRecorder()
        let s = try LegacySetup(model)
        var info = vfio_region_info(argsz: 32, flags: 0, index: 0, cap_offset: 0, size: 0, offset: 0)
        try ioctl(s.kernel, s.device, CVFIO_DEVICE_GET_REGION_INFO, &info)
        #expect(info.flags == UInt32(VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP))
        let p = try mapBAR0(s)
        cvfio_write8(p + 1, 0xab)
        cvfio_write16(p + 2, 0xbeef)
        cvfio_write32(p + 4, 0x1234_5678)
        cvfio_write64(p + 8, 0x0123_4567_89ab_cdef)
        cvfio_write32(p + 0x1000, 7)
        cvfio_write32(p + 0x1000, 7)
        #expect(cvfio_read8(p + 0x10) == 0x11)
        #expect(cvfio_read16(p + 0x12) == 0x2211)
        #expect(cvfio_read32(p + 0x14) == 0x4433_2211)
        #expect(cvfio_read64(p + 0x18) == RegisterRecorder.pattern)
        #expect(
            model.accesses.withLock { $0 } == [
                "w 0x1 1 0xab", "w 0x2 2 0xbeef", "w 0x4 4 0x12345678", "w 0x8 8 0x123456789abcdef",
                "w 0x1000 4 0x7", "w 0x1000 4 0x7", "r 0x10 1", "r 0x12 2", "r 0x14 4", "r 0x18 8",
            ])
        #expect(s.kernel.registerAccessesThroughMappings == 10)
        try s.kernel.munmap(p, length: 0x4000)
        #expect(s.kernel.lock.withLock { s.kernel.trappedMappings.isEmpty })
    }

    /// The model runs with the accessing code's signal mask, so a thread it starts (a new
    /// Dispatch worker) does not inherit the mask the handler was entered with: under
    /// ThreadSanitizer that one blocks every signal, SIGSEGV included, and the thread's first
    /// trapped access ended the process.
    @Test func aThreadTheModelStartsCanUseTheMappingToo() throws {
        guard TrappedMapping.supported else { return }
        let model = ThreadStartingDevice()
        let s = try LegacySetup(model)
        let p = try mapBAR0(s)
        defer { try? s.kernel.munmap(p, length: 0x4000) }
        model.mapping.withLock { $0 = UInt(bitPattern: p) }
        cvfio_write32(p, 1)
        let thread = try #require(model.thread.withLock { $0 })
        pthread_join(thread, nil)
        let seen = try #require(model.seen.withLock { $0 })
        #expect(!seen.sigsegvBlocked)
        #expect(seen.value == 0x10)
    }

    /// munmap ends the trap only once no handler runs on it: while the model is still
    /// answering a load through the mapping, munmap waits (the mapping's context, which the
    /// handler uses, is released after it returns).
    @Test func unmappingWaitsForALoadTheModelIsAnswering() throws {
        guard TrappedMapping.supported else { return }
        let model = HeldLoadDevice()
        let s = try LegacySetup(model)
        let address = UInt(bitPattern: try mapBAR0(s))
        let loaded = Mutex<UInt32?>(nil)
        let loadDone = DispatchSemaphore(value: 0)
        // Queues of their own (overcommit workers): the global queue's few may all be busy.
        DispatchQueue(label: "load").async {
            let v = cvfio_read32(UnsafeRawPointer(bitPattern: address)! + 0x10)
            loaded.withLock { $0 = v }
            loadDone.signal()
        }
        model.entered.wait()
        let unmapped = DispatchSemaphore(value: 0)
        let kernel = s.kernel
        DispatchQueue(label: "munmap").async {
            try? kernel.munmap(UnsafeMutableRawPointer(bitPattern: address)!, length: 0x4000)
            unmapped.signal()
        }
        let waited = unmapped.wait(timeout: .now() + .milliseconds(300)) == .timedOut
        #expect(waited, "munmap returned while the model answered a load")
        model.release.signal()
        loadDone.wait()
        if waited { unmapped.wait() }
        #expect(loaded.withLock { $0 } == 0x1234_5678)
    }

    /// A mapping at an offset into the BAR passes BAR offsets to the model.
    @Test func aMappingAtAnOffsetKeepsBAROffsets() throws {
        guard TrappedMapping.supported else { return }
        let model = RegisterRecorder()
        let s = try LegacySetup(model)
        let p = try s.kernel.mmap(length: 0x1000, protection: PROT_READ | PROT_WRITE, flags: MAP_SHARED, fd: s.device, offset: 0x2000)
        defer { try? s.kernel.munmap(p, length: 0x1000) }
        cvfio_write32(p + 0x10, 1)
        #expect(model.accesses.withLock { $0 } == ["w 0x2010 4 0x1"])
    }

    /// With memory decode off, vfio-pci's fault handler sends SIGBUS; a guarded mapping (as
    /// VFIOKit's regions are) then reads all ones and the model sees nothing.
    @Test func memoryDecodeOffRevokesAGuardedMapping() throws {
        guard TrappedMapping.supported else { return }
        let model = RegisterRecorder()
        let s = try LegacySetup(model)
        let p = try mapBAR0(s)
        let guardNumber = cvfio_guard_mapping(p, 0x4000)
        try #require(guardNumber >= 0)
        defer {
            cvfio_unguard_mapping(guardNumber)
            try? s.kernel.munmap(p, length: 0x4000)
        }
        try s.pwrite(VFIO_PCI_CONFIG_REGION_INDEX, offset: 4, width: 2, value: 0)
        #expect(cvfio_read32(p + 4) == 0xffff_ffff)
        #expect(cvfio_guard_tripped(guardNumber) == 1)
        #expect(model.accesses.withLock { $0 }.isEmpty)
    }

    /// The NVMe controller's MSI-X table and PBA sit in its register BAR: a mapping reaches
    /// them as vfio-pci's does (MSIX_MAPPABLE), not the register model.
    @Test func theMSIXTableInARegisterBARIsReachedThroughTheMapping() throws {
        guard TrappedMapping.supported else { return }
        let controller = NVMeController(namespaces: [NVMeNamespace(blockCount: 8)])
        let s = try LegacySetup(controller)
        let msix = try #require(controller.description.msix)
        let size = controller.description.bars[0].size
        let p = try mapBAR0(s, length: size)
        defer { try? s.kernel.munmap(p, length: size) }
        // Every vector is masked at power-on; the PBA is clear.
        #expect(cvfio_read32(p + msix.tableOffset + 12) == 1)
        #expect(cvfio_read64(p + msix.pbaOffset) == 0)
        cvfio_write32(p + msix.tableOffset + 16 + 8, 0x4242)
        #expect(
            s.kernel.lock.withLock { s.kernel.functions.values.first!.msixEntry(1)!.load(fromByteOffset: 8, as: UInt32.self) } == 0x4242)
        // The registers are the model's: CAP and VS as the controller reports them.
        #expect(cvfio_read32(p + 8) == 0x0001_0400)
    }
}
