/// The domain's bookkeeping for its slots, in flat arrays so a million slots cost a few bytes
/// each: the expected tag (0 when free), the handler, a masked bit, and a stack of free indices.
/// Not thread-safe: ``IMSDomain`` holds it under its lock.
struct SlotTable {
    private(set) var tags: [UInt32]
    private(set) var handlers: [Unmanaged<IMSHandler>?]
    private var maskedBits: [UInt64]
    private var free: [UInt32] = []
    /// One past the highest index ever allocated: the demux scans below it.
    private(set) var highWater = 0
    private var nextTag: UInt32 = 0
    /// The slot whose handler runs now, if any, and a handler to release once it returns.
    var running: Int?
    var releaseAfterRun: Unmanaged<IMSHandler>?

    init(capacity: Int) {
        tags = Array(repeating: 0, count: capacity)
        handlers = Array(repeating: nil, count: capacity)
        maskedBits = Array(repeating: ~0, count: (capacity + 63) / 64)
    }

    var capacity: Int { tags.count }

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
        tags[index] = nextTag
        handlers[index] = handler
        setMasked(index, true)
        return IMSSlot(index: index, tag: nextTag)
    }

    /// Forgets the slot and returns its index to the free stack; returns its handler.
    mutating func release(_ index: Int) -> Unmanaged<IMSHandler>? {
        let handler = handlers[index]
        tags[index] = 0
        handlers[index] = nil
        setMasked(index, true)
        free.append(UInt32(index))
        return handler
    }

    /// True when `slot` is the live allocation of its index.
    func holds(_ slot: IMSSlot) -> Bool {
        slot.index >= 0 && slot.index < capacity && slot.tag != 0 && tags[slot.index] == slot.tag
    }

    func isMasked(_ index: Int) -> Bool { maskedBits[index >> 6] & (1 << UInt64(index & 63)) != 0 }

    mutating func setMasked(_ index: Int, _ masked: Bool) {
        let bit: UInt64 = 1 << UInt64(index & 63)
        if masked { maskedBits[index >> 6] |= bit } else { maskedBits[index >> 6] &= ~bit }
    }

    /// Every live handler, for release when the domain closes.
    mutating func takeAllHandlers() -> [Unmanaged<IMSHandler>] {
        defer { handlers = [] }
        return handlers.compactMap { $0 }
    }
}
