import Dispatch
import Glibc
import Synchronization
import SystemPackage
import Testing
import VFIOKit
import VFIOMock

/// The slot domain: allocation, messages, delivery modes and its refusals.
@Suite struct IMSDomainTests {
    @Test func aStoreWithoutMaskingIsRefusedAndTheErrorSaysWhy() throws {
        let machine = MockMachine(for: .legacy)
        let bus = try machine.kernel.plug(Devices.memory(msix: 1), at: MockMachine.primary)
        let device = try PCIDevice.open(MockMachine.primary, backend: .legacy, system: machine.kernel)
        defer { device.close() }
        let mappings = machine.kernel.dmaMappings(of: MockMachine.primary).count
        let store = LoopbackStore(capacity: 16, bus: bus, supportsMasking: false)
        do {
            _ = try IMSDomain(store: store, device: device, delivery: .polling)
            Issue.record("a store without masking was accepted")
        } catch {
            guard case .storeCannotMask = error else { throw error }
            #expect(error.description.contains("cannot mask"))
            #expect(error.description.contains("shut off an interrupt"))
        }
        // Nothing was set up for it.
        #expect(machine.kernel.dmaMappings(of: MockMachine.primary).count == mappings)
    }

    @Test func eachSlotGetsAStatusWordAddressAndAFreshTag() throws {
        let rig = try LoopbackRig()
        defer { rig.close() }
        let a = try rig.domain.allocate { _ in }
        let b = try rig.domain.allocate { _ in }
        let ma = rig.store.message(a.index)
        let mb = rig.store.message(b.index)
        #expect(ma.data == a.tag)
        #expect(mb.data == b.tag)
        #expect(a.tag != b.tag)
        let stride = UInt64(b.index - a.index) * 4
        #expect(mb.address == ma.address + stride)
        #expect(!ma.targetsMSIWindow)
        let mapped = rig.machine.kernel.dmaMappings(of: MockMachine.primary)
        let covered = mapped.contains { (m: IOMMUMapping) in m.iova <= ma.address && ma.address - m.iova < m.size }
        #expect(covered)
    }

    @Test func aMessageForTheInterruptWindowIsRefusedBeforeAnythingIsProgrammed() throws {
        let rig = try LoopbackRig()
        defer { rig.close() }
        let slot = try rig.domain.allocate { _ in }
        let before = rig.store.message(slot.index)
        let commits = rig.store.commits.load(ordering: .relaxed)
        #expect {
            try rig.domain.program(slot, message: InterruptMessage(address: 0xfee0_1000, data: 0x4021))
        } throws: { error in
            guard case IMSError.addressInMSIWindow(0xfee0_1000) = error else { return false }
            return "\(error)".contains("interrupt window")
        }
        #expect(rig.store.message(slot.index) == before)
        #expect(rig.store.commits.load(ordering: .relaxed) == commits)
    }

    @Test func slotsComeOneAtATimeAndFreedOnesAreReusedWithNewTags() throws {
        let rig = try LoopbackRig(capacity: 8)
        defer { rig.close() }
        var slots = try (0..<5).map { _ in try rig.domain.allocate { _ in } }
        #expect(slots.map(\.index) == [0, 1, 2, 3, 4])
        try rig.domain.free(slots[1])
        try rig.domain.free(slots[3])
        let reused = try rig.domain.allocate { _ in }
        #expect(reused.index == 3)
        #expect(reused.tag != slots[3].tag)
        #expect(throws: IMSError.self) { try rig.domain.unmask(slots[3]) }  // the old handle is stale
        slots += try (0..<4).map { _ in try rig.domain.allocate { _ in } }
        #expect(slots.suffix(4).map(\.index) == [1, 5, 6, 7])
        #expect(throws: IMSError.self) { try rig.domain.allocate { _ in } }
        #expect(rig.domain.allocatedCount == 8)
    }

    @Test func aBatchThatUnmasksAStaleSlotFailsWholeAndUnmasksNothing() throws {
        let rig = try LoopbackRig(capacity: 8)
        defer { rig.close() }
        let old = try rig.domain.allocate { _ in }
        try rig.domain.free(old)
        let owner = try rig.domain.allocate { _ in Issue.record("the new owner was unmasked by a stale handle") }
        #expect(owner.index == old.index)
        var allocated: IMSSlot?
        let error = #expect(throws: IMSError.self) {
            try rig.domain.batch { (b) throws(IMSError) in
                allocated = try b.allocate(handler: IMSHandler { _ in })
                try b.unmask(allocated!)
                try b.unmask(old)
            }
        }
        guard case .staleSlot(let index) = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(index == old.index)
        #expect(rig.domain.allocatedCount == 1, "the batch's own allocation was taken back")
        #expect(rig.store.message(allocated!.index) == InterruptMessage(address: 0, data: 0))
        rig.store.fire(owner.index)
        #expect(try rig.domain.isPending(owner), "the owner's slot stayed masked: its event is held")
    }

    @Test func eachSlotRunsItsOwnHandlerOnlyWhenUnmasked() throws {
        let rig = try LoopbackRig()
        defer { rig.close() }
        let arrivals = Arrivals<Int>()
        let slots = try (0..<64).map { i in try rig.domain.allocate { _ in arrivals.record(i) } }
        rig.store.fire(slots[5].index)  // masked: held by the device
        for s in slots { try rig.domain.unmask(s) }
        #expect(arrivals.wait(for: 1) == [5], "the held event is delivered at unmask")
        let order = Array(0..<64).shuffled()
        for i in order { rig.store.fire(slots[i].index) }
        let got = arrivals.wait(for: 65)
        #expect(got.count == 65)
        #expect(got.sorted() == (Array(0..<64) + [5]).sorted())
    }

    @Test func aMillionSlotsNeedOneFileAndOneRegistration() throws {
        // Counts the files and epoll registrations the device and the domain make, and nobody else's.
        let made = Mutex(0)
        let rig = try LoopbackRig(capacity: 1_000_000) { call in
            switch call {
            case .open, .eventfd, .epollCreate: made.withLock { $0 += 1 }
            case .epollControl(let operation, _) where operation == 1: made.withLock { $0 += 1 }  // EPOLL_CTL_ADD
            default: break
            }
        }
        defer { rig.close() }
        let files = made.withLock { $0 }
        let fired = Arrivals<Int>()
        let handler = IMSHandler { slot in fired.record(slot.index) }
        let slots = try rig.domain.batch { (b) throws(IMSError) -> [IMSSlot] in
            var slots: [IMSSlot] = []
            for _ in 0..<1_000_000 {
                let s = try b.allocate(handler: handler)
                try b.unmask(s)
                slots.append(s)
            }
            return slots
        }
        #expect(slots.last?.index == 999_999)
        #expect(made.withLock { $0 } - files < 16)
        rig.store.fire(999_999)
        rig.store.fire(0)
        #expect(fired.wait(for: 2).sorted() == [0, 999_999])
    }

    @Test func pollingDeliversOnlyWhenPolled() throws {
        let rig = try LoopbackRig(polling: true)
        defer { rig.close() }
        let count = Atomic<Int>(0)
        let slot = try rig.domain.allocate { _ in count.add(1, ordering: .relaxed) }
        try rig.domain.unmask(slot)
        rig.store.fire(slot.index)
        #expect(count.load(ordering: .relaxed) == 0)
        #expect(rig.domain.poll() == 1)
        #expect(rig.domain.poll() == 0)
        #expect(count.load(ordering: .relaxed) == 1)
    }

    @Test func anEventFDSlotSignalsItsOwnFile() throws {
        let rig = try LoopbackRig()
        defer { rig.close() }
        let (slot, fd) = try rig.domain.allocateEventFD()
        try rig.domain.unmask(slot)
        rig.store.fire(slot.index)
        let deadline = ContinuousClock.now + .seconds(5)
        var value: UInt64 = 0
        while ContinuousClock.now < deadline {
            let n = try? withUnsafeMutableBytes(of: &value) { (b) throws(Errno) in try rig.machine.kernel.read(fd, into: b) }
            if n == 8 { break }
            usleep(500)
        }
        #expect(value == 1)
        #expect(fcntl(fd.rawValue, F_GETFD) >= 0)
        try rig.domain.free(slot)
        #expect(fcntl(fd.rawValue, F_GETFD) == -1, "the slot's eventfd is closed with it")
    }

    @Test func aStreamSlotYieldsEachDelivery() async throws {
        let rig = try LoopbackRig()
        defer { rig.close() }
        let (slot, deliveries) = try rig.domain.allocateStream()
        try rig.domain.unmask(slot)
        rig.store.fire(slot.index)
        var iterator = deliveries.makeAsyncIterator()
        let first: Void? = await iterator.next()
        #expect(first != nil)
    }
}
