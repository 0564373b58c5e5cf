import Synchronization
import Testing
import VFIOKit
import VFIOMock

/// A store the test plays the device for: messages and masks live here, and ``fire(_:)``
/// writes a slot's message through the mock's bus (remapping unit and IOMMU), with its
/// summaries once the domain has enabled posting, then sends MSI-X vector 0 as the doorbell,
/// or holds the event while the slot is masked.
final class LoopbackStore: InterruptMessageStore, @unchecked Sendable {
    let capacity: Int
    let supportsMasking: Bool
    let bus: DeviceBus
    private struct Slot {
        var message = InterruptMessage(address: 0, data: 0)
        var masked = true
        var pending = false
    }
    private let slots: Mutex<[Slot]>
    let commits = Atomic<Int>(0)
    /// The status area the device posts summaries into, once the domain enabled posting.
    let posting = Mutex<IMSStatusLayout?>(nil)
    var summaryPosting: IMSDomain.SummaryPosting { IMSDomain.SummaryPosting { layout in self.posting.withLock { $0 = layout } } }

    init(capacity: Int, bus: DeviceBus, supportsMasking: Bool = true) {
        self.capacity = capacity
        self.bus = bus
        self.supportsMasking = supportsMasking
        slots = Mutex(Array(repeating: Slot(), count: capacity))
    }

    func write(_ message: InterruptMessage, slot: Int) { slots.withLock { $0[slot].message = message } }
    func mask(_ slot: Int) { slots.withLock { $0[slot].masked = true } }
    func unmask(_ slot: Int) {
        let send = slots.withLock { s -> InterruptMessage? in
            s[slot].masked = false
            guard s[slot].pending else { return nil }
            s[slot].pending = false
            return s[slot].message
        }
        if let send { deliver(send) }
    }
    func pending(_ slot: Int) -> Bool { slots.withLock { $0[slot].pending } }
    func shutdown(_ slot: Int) { slots.withLock { $0[slot] = Slot() } }
    func commit(timeout: Duration) throws(IMSError) { commits.add(1, ordering: .relaxed) }

    func message(_ slot: Int) -> InterruptMessage { slots.withLock { $0[slot].message } }

    /// The device's event for `slot`: sent now, or held while masked.
    func fire(_ slot: Int) {
        let send = slots.withLock { s -> InterruptMessage? in
            guard !s[slot].masked else {
                s[slot].pending = true
                return nil
            }
            return s[slot].message
        }
        if let send { deliver(send) }
    }

    /// Writes `message` as the device would, whatever the slot now holds (a late write).
    func deliver(_ message: InterruptMessage) {
        write(message)
        bus.signalMSIX(vector: 0)
    }

    /// The message write and, when posting, the summary writes above its slot; no doorbell.
    func write(_ message: InterruptMessage, posting post: Bool = true) {
        bus.writeMessage(address: message.address, data: message.data)
        guard post else { return }
        posting.withLock { $0 }?.forEachSummary(ofMessageAt: message.address) { bus.writeMessage(address: $0, data: 1) }
    }
}

/// A domain over a ``LoopbackStore`` on a plain MSI-X device, with the doorbell on a loop.
struct LoopbackRig {
    let machine: MockMachine
    let device: PCIDevice
    let loop: EventLoop
    let store: LoopbackStore
    let domain: IMSDomain

    /// `watch`, when given, sees every call the device and the domain make (see ``InterposedKernel``).
    init(
        capacity: Int = 4096, polling: Bool = false, posting: Bool = false, backend: Backend = .legacy,
        watch: ((InterposedKernel.Call) -> Void)? = nil
    ) throws {
        machine = MockMachine(for: backend)
        let simulated = Devices.memory(msix: 4)
        let bus = try machine.kernel.plug(simulated, at: MockMachine.primary)
        let kernel = machine.kernel
        let system: any SystemCalls = watch.map { w in InterposedKernel(kernel) { w($0) } } ?? kernel
        device = try PCIDevice.open(MockMachine.primary, backend: backend, system: system)
        loop = try EventLoop(system: system)
        try loop.start()
        store = LoopbackStore(capacity: capacity, bus: bus)
        let doorbell = try #require(try device.interrupts.enable(.msix, vectors: 1).first)
        try device.setBusMaster(true)
        domain = try IMSDomain(
            store: store, device: device, delivery: polling ? .polling : .doorbell(doorbell, loop),
            posting: posting ? store.summaryPosting : nil)
    }

    func close() {
        domain.close()
        loop.stop()
        device.close()
    }
}
