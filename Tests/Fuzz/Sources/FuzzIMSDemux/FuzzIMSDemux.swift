import LibFuzzerDriver
import PCI
import Synchronization
import VFIOKit
import VFIOMock

/// The IMS status-area demux fed arbitrary device writes: each 8-byte record of the input is one
/// step (an op byte, a pad byte, a 16-bit index, a 32-bit value) on one domain of
/// ``Rig/slots`` slots whose device posts summaries:
/// - 0: a write of any value to any word of the status area (slot words and summaries alike);
/// - 1: a slot's own message, with its summaries, as a posting device sends it;
/// - 2: a demux pass; 3 and 4: mask and unmask a slot; 5: free a slot and allocate it again.
/// A handler must only run for its own slot, with its live tag, while unmasked; and a message
/// sent while no stray write could touch it is delivered by the next pass, or after unmask.
@_cdecl("FuzzIMSDemux_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    // Made before the first input, so its one-time allocations are not taken for an input's leak.
    _ = Rig.shared
    return vfiokit_fuzzer_main(argc, argv) { data, size in fuzz(UnsafeBufferPointer(start: data, count: size)) }
}

/// One input (never a null pointer: the driver passes an empty buffer instead).
func fuzz(_ input: UnsafeBufferPointer<UInt8>) -> CInt {
    let rig = Rig.shared
    rig.reset()
    var at = 0
    while at + 8 <= input.count {
        let index = Int(UInt16(input[at + 2]) | UInt16(input[at + 3]) << 8)
        let value = (0..<4).reduce(UInt32(0)) { $0 | UInt32(input[at + 4 + $1]) << (8 * UInt32($1)) }
        rig.step(op: input[at] % 6, index: index, value: value)
        at += 8
    }
    rig.step(op: 2, index: 0, value: 0)
    return 0
}

/// What the device and the test know of the slots; the device is this file, as in the unit
/// tests' loopback store.
final class Rig: @unchecked Sendable {
    static let slots = 5000
    static let shared = try! Rig()

    final class Store: InterruptMessageStore, @unchecked Sendable {
        let capacity = Rig.slots
        let supportsMasking = true
        var messages = [InterruptMessage](repeating: InterruptMessage(address: 0, data: 0), count: Rig.slots)
        let layout = Mutex<IMSStatusLayout?>(nil)
        func write(_ message: InterruptMessage, slot: Int) { messages[slot] = message }
        func mask(_ slot: Int) {}
        func unmask(_ slot: Int) {}
        func pending(_ slot: Int) -> Bool { false }
        func shutdown(_ slot: Int) { messages[slot] = InterruptMessage(address: 0, data: 0) }
        func commit(timeout: Duration) throws(IMSError) {}
    }

    let bus: DeviceBus
    let store = Store()
    let domain: IMSDomain
    var slots: [IMSSlot] = []
    var masked: [Bool]
    /// Slots with a message their handler has not run for yet, and how many stray writes had
    /// come when it was sent.
    var owed: [Int: Int] = [:]
    var strays = 0
    /// Words this input wrote, zeroed again before the next.
    var touched: Set<Int> = []
    let layout: IMSStatusLayout

    init() throws {
        let kernel = MockKernel()
        let address = try PCIAddress(parsing: "0000:00:04.0")
        bus = try kernel.plug(IMSQueueDevice(), at: address)
        let device = try PCIDevice.open(address, backend: .legacy, system: kernel)
        try device.setBusMaster(true)
        let store = self.store
        domain = try IMSDomain(
            store: store, device: device, delivery: .polling,
            posting: IMSDomain.SummaryPosting { layout in store.layout.withLock { $0 = layout } })
        layout = store.layout.withLock { $0! }
        masked = Array(repeating: false, count: Rig.slots)
        for i in 0..<Rig.slots { slots.append(try allocate(i)) }
    }

    private func allocate(_ i: Int) throws(IMSError) -> IMSSlot {
        let slot = try domain.allocate { [unowned self] delivered in self.delivered(i, delivered) }
        try domain.unmask(slot)
        return slot
    }

    /// The area clean, every slot unmasked, nothing owed: the same start for every input.
    func reset() {
        for word in touched { write(word: word, 0) }
        touched.removeAll(keepingCapacity: true)
        for i in 0..<Rig.slots where masked[i] {
            try! domain.unmask(slots[i])
            masked[i] = false
        }
        owed.removeAll(keepingCapacity: true)
    }

    private func write(word: Int, _ value: UInt32) {
        bus.writeMessage(address: layout.base + UInt64(word * 4), data: value)
        touched.insert(word)
    }

    func step(op: UInt8, index: Int, value: UInt32) {
        let i = index % Rig.slots
        switch op {
        case 0:
            write(word: index % (layout.byteCount / 4), value)
            strays += 1
        case 1:
            write(word: i, store.messages[i].data)
            layout.forEachSummary(ofMessageAt: store.messages[i].address) { write(word: Int(($0 - layout.base) / 4), 1) }
            owed[i] = strays
        case 2:
            domain.poll()
            for (s, straysThen) in owed where !masked[s] {
                precondition(strays != straysThen, "slot \(s)'s message was lost")
                owed[s] = nil
            }
        case 3:
            try! domain.mask(slots[i])
            masked[i] = true
        case 4:
            try! domain.unmask(slots[i])
            masked[i] = false
        default:
            try! domain.free(slots[i])
            slots[i] = try! allocate(i)
            masked[i] = false
            owed[i] = nil
        }
    }

    private func delivered(_ i: Int, _ slot: IMSSlot) {
        precondition(slot.index == i, "slot \(slot.index) delivered to slot \(i)'s handler")
        precondition(slot.tag == slots[i].tag, "slot \(i) delivered with tag \(slot.tag), not its live \(slots[i].tag)")
        precondition(!masked[i], "masked slot \(i) delivered")
        owed[i] = nil
    }
}
