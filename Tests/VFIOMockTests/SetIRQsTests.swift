#if canImport(Glibc)
import Glibc
#endif
import CVFIO
import SystemPackage
import Testing
@testable import VFIOMock

private let trigger = UInt32(VFIO_IRQ_SET_ACTION_TRIGGER)
private let eventfdData = UInt32(VFIO_IRQ_SET_DATA_EVENTFD)
private let none = UInt32(VFIO_IRQ_SET_DATA_NONE)
private let bool = UInt32(VFIO_IRQ_SET_DATA_BOOL)

@Suite struct SetIRQsValidationTests {
    @Test func malformedRequests() throws {
        let s = try LegacySetup(memoryDevice(msix: 8))
        let e = try s.eventfd()
        let k = s.kernel, d = s.device
        let msix = VFIO_PCI_MSIX_IRQ_INDEX
        // Two action types: no handler for that combination.
        #expect(errno { try setIRQs(k, d, index: msix, start: 0, count: 0, flags: none | trigger | UInt32(VFIO_IRQ_SET_ACTION_MASK)) }
            == .inappropriateIOCTLForDevice)
        // Two data types.
        #expect(errno { try setIRQs(k, d, index: msix, start: 0, count: 1, flags: bool | eventfdData | trigger, payload: [e.rawValue].payload) }
            == .invalidArgument)
        // start + count beyond the index's count, and start alone beyond it.
        #expect(errno { try setIRQs(k, d, index: msix, start: 7, count: 2, flags: eventfdData | trigger, payload: [e.rawValue, e.rawValue].payload) }
            == .invalidArgument)
        #expect(errno { try setIRQs(k, d, index: msix, start: 8, count: 0, flags: none | trigger) } == .invalidArgument)
        // No MSI capability: every MSI request is EINVAL.
        #expect(errno { try setIRQs(k, d, index: VFIO_PCI_MSI_IRQ_INDEX, start: 0, count: 1, flags: none | trigger) } == .invalidArgument)
        // Fewer fds than count (argsz too small).
        #expect(errno { try setIRQs(k, d, index: msix, start: 0, count: 2, flags: eventfdData | trigger, payload: [e.rawValue].payload) }
            == .invalidArgument)
        #expect(errno { try setIRQs(k, d, index: msix, start: 0, count: 1, flags: eventfdData | trigger, payload: [e.rawValue].payload, argsz: 16) }
            == .invalidArgument)
        // Unknown flag bits, unknown index.
        #expect(errno { try setIRQs(k, d, index: msix, start: 0, count: 0, flags: none | trigger | 0x100) } == .invalidArgument)
        #expect(errno { try setIRQs(k, d, index: 5, start: 0, count: 0, flags: none | trigger) } == .invalidArgument)
        // count 0 with eventfds when MSI-X is off: the PCI core cannot allocate 0 vectors.
        #expect(errno { try setIRQs(k, d, index: msix, start: 0, count: 0, flags: eventfdData | trigger) } == .outOfRange)
        // MSI-X takes no MASK/UNMASK.
        #expect(errno { try setIRQs(k, d, index: msix, start: 0, count: 1, flags: none | UInt32(VFIO_IRQ_SET_ACTION_MASK)) }
            == .inappropriateIOCTLForDevice)
        // Loopback trigger of a disabled index is EINVAL.
        #expect(errno { try setIRQs(k, d, index: msix, start: 0, count: 1, flags: none | trigger) } == .invalidArgument)
        // ERR and REQ take one trigger at most.
        #expect(errno { try setIRQs(k, d, index: VFIO_PCI_REQ_IRQ_INDEX, start: 0, count: 2, flags: none | trigger) } == .invalidArgument)
        #expect(errno { try setIRQs(k, d, index: VFIO_PCI_ERR_IRQ_INDEX, start: 0, count: 2, flags: eventfdData | trigger, payload: [e.rawValue, e.rawValue].payload) }
            == .invalidArgument)
        #expect(errno { try setIRQs(k, d, index: VFIO_PCI_REQ_IRQ_INDEX, start: 0, count: 1, flags: eventfdData | UInt32(VFIO_IRQ_SET_ACTION_UNMASK), payload: [e.rawValue].payload) }
            == .inappropriateIOCTLForDevice)
        // A descriptor that is not an eventfd, and one that cannot be open (beyond any
        // RLIMIT_NOFILE; a low number may be a parallel test's file).
        #expect(errno { try s.setIRQs(index: msix, fds: [s.container.rawValue]) } == .invalidArgument)
        #expect(errno { try s.setIRQs(index: msix, fds: [Int32.max]) } == .badFileDescriptor)
        #expect(s.kernel.interruptState(of: address("0000:01:00.0"))?.kind == InterruptState.Kind.none)
    }
}

@Suite struct InterruptDeliveryTests {
    @Test func msixEnableGrowDeassignAndLoopback() throws {
        let device = memoryDevice(msix: 8)
        let s = try LegacySetup(device)
        let a = address("0000:01:00.0")
        let bus = try #require(device.bus)
        let e0 = try s.eventfd(), e1 = try s.eventfd(), e5 = try s.eventfd()
        try s.setIRQs(index: VFIO_PCI_MSIX_IRQ_INDEX, fds: [e0.rawValue, e1.rawValue])
        var state = try #require(s.kernel.interruptState(of: a))
        #expect(state.kind == .msix && state.enabledVectors == [0, 1] && state.allocatedVectors == 2)
        // MSI-X needs bus mastering to reach memory.
        bus.signalMSIX(vector: 1)
        #expect(waitEvent(e1, milliseconds: 10) == 0)
        try s.enableBusMaster()
        bus.signalMSIX(vector: 1)
        #expect(waitEvent(e1) == 1)
        // The caller may close its descriptor; the kernel keeps a reference.
        try s.kernel.close(e0)
        bus.signalMSIX(vector: 0)
        // Dynamic growth while enabled.
        try s.setIRQs(index: VFIO_PCI_MSIX_IRQ_INDEX, start: 5, fds: [e5.rawValue])
        state = try #require(s.kernel.interruptState(of: a))
        #expect(state.enabledVectors == [0, 1, 5] && state.allocatedVectors == 6)
        bus.signalMSIX(vector: 5)
        #expect(waitEvent(e5) == 1)
        // fd -1 de-assigns one vector; loopback trigger fires the others.
        try s.setIRQs(index: VFIO_PCI_MSIX_IRQ_INDEX, start: 1, fds: [-1])
        #expect(s.kernel.interruptState(of: a)?.enabledVectors == [0, 5])
        bus.signalMSIX(vector: 1)
        #expect(waitEvent(e1, milliseconds: 10) == 0)
        try setIRQs(s.kernel, s.device, index: VFIO_PCI_MSIX_IRQ_INDEX, start: 4, count: 2, flags: bool | trigger, payload: [1, 1])
        #expect(waitEvent(e5) == 1)
        // A different index while MSI-X is on is EINVAL; count 0 + DATA_NONE disables.
        #expect(errno { try s.setIRQs(index: VFIO_PCI_INTX_IRQ_INDEX, fds: [e1.rawValue]) } == .invalidArgument)
        try setIRQs(s.kernel, s.device, index: VFIO_PCI_MSIX_IRQ_INDEX, start: 0, count: 0, flags: none | trigger)
        state = try #require(s.kernel.interruptState(of: a))
        #expect(state.kind == .none && state.enabledVectors.isEmpty)
    }

    @Test func messageWritesGoThroughInterruptRemapping() throws {
        let device = memoryDevice(msix: 4)
        let s = try LegacySetup(device)
        let a = address("0000:01:00.0")
        let bus = try #require(device.bus)
        let e = try s.eventfd()
        try s.enableBusMaster()
        #expect(s.kernel.interruptMessage(of: a, msix: true, vector: 3) == nil)
        try s.setIRQs(index: VFIO_PCI_MSIX_IRQ_INDEX, start: 3, fds: [e.rawValue])
        let message = try #require(s.kernel.interruptMessage(of: a, msix: true, vector: 3))
        #expect(bus.writeMessage(address: message.address, data: message.data))
        #expect(waitEvent(e) == 1)
        #expect(!bus.writeMessage(address: message.address, data: message.data ^ 1))
        // Outside the MSI window a message is a DMA write.
        let buf = try s.buffer()
        try s.mapDMA(vaddr: buf, iova: 0x8000, size: 4096)
        #expect(bus.writeMessage(address: 0x8010, data: 0xabcd))
        #expect(buf.load(fromByteOffset: 0x10, as: UInt32.self) == 0xabcd)
    }

    @Test func noresizeRefusesGrowth() throws {
        var config = MockKernel.Configuration()
        config.dynamicMSIX = false
        let s = try LegacySetup(memoryDevice(msix: 8), configuration: config)
        let e = try s.eventfd()
        try s.setIRQs(index: VFIO_PCI_MSIX_IRQ_INDEX, fds: [e.rawValue])
        #expect(errno { try s.setIRQs(index: VFIO_PCI_MSIX_IRQ_INDEX, start: 3, fds: [e.rawValue]) } == .invalidArgument)
        // Re-assigning an allocated vector is fine.
        try s.setIRQs(index: VFIO_PCI_MSIX_IRQ_INDEX, fds: [-1])
        try s.setIRQs(index: VFIO_PCI_MSIX_IRQ_INDEX, fds: [e.rawValue])
    }

    @Test func msixMaskBitsAndPendingInTheMappedTable() throws {
        let device = memoryDevice(msix: 4)
        let s = try LegacySetup(device)
        let bus = try #require(device.bus)
        let e = try s.wire(index: VFIO_PCI_MSIX_IRQ_INDEX, count: 1)[0]
        let bar = try s.kernel.mmap(length: 65536, protection: PROT_READ | PROT_WRITE, flags: MAP_SHARED, fd: s.device, offset: 0)
        // The kernel programmed and unmasked entry 0.
        #expect(bar.load(fromByteOffset: 0x2000, as: UInt32.self) == 0xfee0_0000)
        #expect(bar.load(fromByteOffset: 0x2000 + 12, as: UInt32.self) == 0)
        bar.storeBytes(of: UInt32(1), toByteOffset: 0x2000 + 12, as: UInt32.self)
        bus.signalMSIX(vector: 0)
        #expect(waitEvent(e, milliseconds: 10) == 0)
        #expect(bar.load(fromByteOffset: 0x3000, as: UInt64.self) & 1 == 1)
        bar.storeBytes(of: UInt32(0), toByteOffset: 0x2000 + 12, as: UInt32.self)
        bus.signalMSIX(vector: 1)
        #expect(waitEvent(e) == 1)
        #expect(bar.load(fromByteOffset: 0x3000, as: UInt64.self) & 1 == 0)
        try s.kernel.munmap(bar, length: 65536)
    }

    @Test func msixTableInATrappedBARIsKernelOwned() throws {
        let device = memoryDevice(msix: 4, trappedTable: true)
        let s = try LegacySetup(device)
        let e = try s.wire(index: VFIO_PCI_MSIX_IRQ_INDEX, start: 2, count: 1)[0]
        device.bus!.signalMSIX(vector: 2)
        #expect(waitEvent(e) == 1)
        // Vector 0 was allocated but has no eventfd: the kernel keeps it masked.
        device.bus!.signalMSIX(vector: 0)
        #expect(waitEvent(e, milliseconds: 10) == 0)
        // Writes to the table through the region are dropped.
        try s.pwrite(4, offset: 12 + 32, width: 4, value: 1)
        device.bus!.signalMSIX(vector: 2)
        #expect(waitEvent(e) == 1)
    }

    @Test func msiWithPerVectorMask() throws {
        let device = memoryDevice(msi: 4)
        let s = try LegacySetup(device)
        let bus = try #require(device.bus)
        let e1 = try s.wire(index: VFIO_PCI_MSI_IRQ_INDEX, count: 2)[1]
        bus.signalMSI(vector: 1)
        #expect(waitEvent(e1) == 1)
        // The mask register passes through to the device: masked vectors stay pending.
        let cap = 0x40 + 0x3c
        let maskOffset = cap + 0x10
        try s.pwrite(VFIO_PCI_CONFIG_REGION_INDEX, offset: maskOffset, width: 4, value: 0x2)
        bus.signalMSI(vector: 1)
        #expect(waitEvent(e1, milliseconds: 10) == 0)
        try s.pwrite(VFIO_PCI_CONFIG_REGION_INDEX, offset: maskOffset, width: 4, value: 0)
        #expect(waitEvent(e1) == 1)
        // Vector 3 was never enabled (2 allocated).
        bus.signalMSI(vector: 3)
        #expect(s.kernel.interruptState(of: address("0000:01:00.0"))?.droppedMessages == 1)
    }

    @Test func intxAutomaskAndUnmask() throws {
        let device = MemoryBARDevice()
        let s = try LegacySetup(device)
        let a = address("0000:01:00.0")
        let bus = try #require(device.bus)
        let e = try s.eventfd()
        try s.setIRQs(index: VFIO_PCI_INTX_IRQ_INDEX, fds: [e.rawValue])
        bus.setINTx(asserted: true)
        #expect(waitEvent(e) == 1)
        #expect(s.kernel.interruptState(of: a)?.intxMasked == true)
        // Automasked: no second event while masked.
        bus.setINTx(asserted: false)
        bus.setINTx(asserted: true)
        #expect(waitEvent(e, milliseconds: 10) == 0)
        // Unmask with the line still asserted fires again and stays masked.
        try setIRQs(s.kernel, s.device, index: VFIO_PCI_INTX_IRQ_INDEX, start: 0, count: 1, flags: none | UInt32(VFIO_IRQ_SET_ACTION_UNMASK))
        #expect(waitEvent(e) == 1)
        bus.setINTx(asserted: false)
        try setIRQs(s.kernel, s.device, index: VFIO_PCI_INTX_IRQ_INDEX, start: 0, count: 1, flags: none | UInt32(VFIO_IRQ_SET_ACTION_UNMASK))
        #expect(s.kernel.interruptState(of: a)?.intxMasked == false)
        // User MASK holds a new assertion back until UNMASK.
        try setIRQs(s.kernel, s.device, index: VFIO_PCI_INTX_IRQ_INDEX, start: 0, count: 1, flags: bool | UInt32(VFIO_IRQ_SET_ACTION_MASK), payload: [1])
        bus.setINTx(asserted: true)
        #expect(waitEvent(e, milliseconds: 10) == 0)
        try setIRQs(s.kernel, s.device, index: VFIO_PCI_INTX_IRQ_INDEX, start: 0, count: 1, flags: none | UInt32(VFIO_IRQ_SET_ACTION_UNMASK))
        #expect(waitEvent(e) == 1)
        #expect(errno { try setIRQs(s.kernel, s.device, index: VFIO_PCI_INTX_IRQ_INDEX, start: 0, count: 1, flags: eventfdData | UInt32(VFIO_IRQ_SET_ACTION_MASK), payload: [e.rawValue].payload) }
            == .inappropriateIOCTLForDevice)
        // Count 0 with an eventfd is EINVAL for INTx; count 0 + NONE disables.
        #expect(errno { try setIRQs(s.kernel, s.device, index: VFIO_PCI_INTX_IRQ_INDEX, start: 0, count: 0, flags: eventfdData | trigger) } == .invalidArgument)
        try setIRQs(s.kernel, s.device, index: VFIO_PCI_INTX_IRQ_INDEX, start: 0, count: 0, flags: none | trigger)
        #expect(s.kernel.interruptState(of: a)?.kind == InterruptState.Kind.none)
    }

    @Test func errAndReqTriggers() throws {
        let s = try LegacySetup(MemoryBARDevice())
        let a = address("0000:01:00.0")
        let req = try s.eventfd(), err = try s.eventfd()
        #expect(!s.kernel.requestRemoval(of: a))
        // DATA_NONE with no trigger armed is EINVAL.
        #expect(errno { try setIRQs(s.kernel, s.device, index: VFIO_PCI_REQ_IRQ_INDEX, start: 0, count: 1, flags: none | trigger) } == .invalidArgument)
        try s.setIRQs(index: VFIO_PCI_REQ_IRQ_INDEX, fds: [req.rawValue])
        try s.setIRQs(index: VFIO_PCI_ERR_IRQ_INDEX, fds: [err.rawValue])
        #expect(s.kernel.requestRemoval(of: a))
        #expect(waitEvent(req) == 1)
        try setIRQs(s.kernel, s.device, index: VFIO_PCI_ERR_IRQ_INDEX, start: 0, count: 1, flags: none | trigger)
        #expect(waitEvent(err) == 1)
        try setIRQs(s.kernel, s.device, index: VFIO_PCI_REQ_IRQ_INDEX, start: 0, count: 0, flags: none | trigger)
        #expect(!s.kernel.requestRemoval(of: a))
        #expect(s.kernel.interruptState(of: a)?.reqArmed == false && s.kernel.interruptState(of: a)?.errArmed == true)
        #expect(s.kernel.interruptState(of: a)?.removalRequests == 3)
    }
}
