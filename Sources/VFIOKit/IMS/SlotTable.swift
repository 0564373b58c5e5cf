/// The domain's bookkeeping for its slots: one 16-byte record per slot (the expected tag, 0 when
/// free; whether it is masked; its handler) in memory of its own, so a delivery reads a single
/// cache line of it, and a stack of free indices. Not thread-safe: ``IMSDomain`` holds it under
/// its lock.
struct SlotTable: ~Copyable {
    struct Slot {
        var tag: UInt32 = 0
        var masked = true
        var handler: Unmanaged<IMSHandler>? = nil
    }

    let capacity: Int
    private let slots: UnsafeMutablePointer<Slot>
    private var free: [UInt32] = []
    /// One past the highest index ever allocated: the demux scans below it.
    private(set) var highWater = 0
    private var nextTag: UInt32 = 0
    /// The slot whose handler runs now, if any, and a handler to release once it returns.
    var running: Int?
    var releaseAfterRun: Unmanaged<IMSHandler>?

    init(capacity: Int) {
        self.capacity = capacity
        slots = .allocate(capacity: max(capacity, 1))
        slots.initialize(repeating: Slot(), count: capacity)
    }

    deinit {
        slots.deinitialize(count: capacity)
        slots.deallocate()
    }

    /// Slot `index`'s record.
    @inline(__always)
    subscript(index: Int) -> Slot {
        precondition(index >= 0 && index < capacity, "IMS slot \(index) is outside the table")
        return slots[index]
    }

    /// How many slots are allocated.
    var allocatedCount: Int { highWater - free.count }

    /// The allocated indices, in order.
    var liveIndices: [Int] { (0..<highWater).filter { slots[$0].tag != 0 } }

    /// Takes a free index (the most recently freed first) with a fresh tag; the slot is masked.
    mutating func allocate(_ handler: Unmanaged<IMSHandler>) -> IMSSlot? {
        let index: Int
        if let reused = free.popLast() {
            index = Int(reused)
        } else if highWater < capacity {
            index = highWater
            highWater += 1
        } else {
            return nil
        }
        nextTag &+= 1
        if nextTag == 0 { nextTag = 1 }
        slots[index] = Slot(tag: nextTag, masked: true, handler: handler)
        return IMSSlot(index: index, tag: nextTag)
    }

    /// Forgets the slot and returns its index to the free stack; returns its handler.
    mutating func release(_ index: Int) -> Unmanaged<IMSHandler>? {
        let handler = self[index].handler
        slots[index] = Slot()
        free.append(UInt32(index))
        return handler
    }

    /// True when `slot` is the live allocation of its index.
    func holds(_ slot: IMSSlot) -> Bool {
        slot.index >= 0 && slot.index < capacity && slot.tag != 0 && slots[slot.index].tag == slot.tag
    }

    mutating func setMasked(_ index: Int, _ masked: Bool) {
        precondition(index >= 0 && index < capacity, "IMS slot \(index) is outside the table")
        slots[index].masked = masked
    }

    /// Every live handler, for release when the domain closes; the records forget them.
    mutating func takeAllHandlers() -> [Unmanaged<IMSHandler>] {
        (0..<highWater).compactMap { i in
            defer { slots[i].handler = nil }
            return slots[i].handler
        }
    }
}
