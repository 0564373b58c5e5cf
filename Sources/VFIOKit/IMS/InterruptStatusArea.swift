import CVFIO

/// DMA memory where devices write IMS messages, laid out as ``IMSStatusLayout`` says: one
/// 32-bit word per slot, into which the device writes the slot's tag, then the summary levels.
/// The memory lies outside the interrupt window, so every message is an ordinary DMA write
/// through the IOMMU.
///
/// A view of a buffer its ``IMSDomain`` owns; valid while the domain holds the buffer.
struct InterruptStatusArea: @unchecked Sendable {
    let words: UnsafeMutablePointer<UInt32>
    /// Each summary level's first word and word count, level 1 first, held inline (in one
    /// cache line with ``words``) so that the demux's walk reads no array.
    private let levels: Int
    private var levelStart = InlineArray<8, UInt32>(repeating: 0)
    private var levelWords = InlineArray<8, UInt32>(repeating: 0)
    let layout: IMSStatusLayout

    var slots: Int { layout.slots }

    /// Allocates the memory for `slots` slots below `limit` and checks it stays clear of the
    /// interrupt window (it is freed again if not).
    static func allocate(slots: Int, dma: DMASpace, below limit: UInt64) throws(IMSError) -> DMABuffer {
        let bytes = IMSStatusLayout(base: 0, slots: slots).byteCount
        let buffer: DMABuffer
        do { buffer = try dma.allocate(bytes, below: limit) } catch { throw .framework(error) }
        let first = buffer.deviceAddress
        if InterruptMessage.msiWindow.overlaps(first...first + UInt64(bytes) - 1) {
            try? buffer.free()
            throw .addressInMSIWindow(max(first, InterruptMessage.msiWindow.lowerBound))
        }
        return buffer
    }

    init(_ buffer: borrowing DMABuffer, slots: Int) {
        layout = IMSStatusLayout(base: buffer.deviceAddress, slots: slots)
        words = buffer.bytes.baseAddress!.bindMemory(to: UInt32.self, capacity: layout.byteCount / 4)
        levels = layout.levelCounts.count
        precondition(
            levels <= levelStart.count && layout.byteCount / 4 <= UInt32.max,
            "an IMS status area of \(slots) slots is larger than the demux can walk")
        for level in 0..<levels {
            levelStart[level] = UInt32(layout.levelOffsets[level] / 4)
            levelWords[level] = UInt32(layout.levelCounts[level])
        }
    }

    /// The message that makes the device write `tag` into `index`'s word.
    func message(index: Int, tag: UInt32) -> InterruptMessage {
        InterruptMessage(address: layout.address(ofSlot: index), data: tag)
    }

    /// The word the device last wrote for `index` (0: nothing since it was cleared).
    @inline(__always) func word(_ index: Int) -> UInt32 { UInt32.volatileLoad(words + index) }

    @inline(__always) func clear(_ index: Int) { UInt32.volatileStore(words + index, 0) }

    /// Marks the summaries above `index`, as a posting device does after a message: so the
    /// next pass of ``forEachPosted(_:)`` looks at the slot again.
    func post(_ index: Int) {
        layout.forEachSummary(of: index) { address in
            UInt32.volatileStore(words + Int((address - layout.base) / 4), 1)
        }
        MemoryBarrier.full()
    }

    /// Calls `body` with each slot index below `end` whose word is not zero, in index order,
    /// reading every word: for devices that do not post summaries. Allocates nothing.
    @inline(__always)
    func forEachWritten(below end: Int, _ body: (Int) -> Void) {
        forEachNonZero(words, 0..<end, body)
    }

    /// Calls `body` with each slot whose summaries a device posted and whose word is not zero,
    /// reading 64 words per level on the way down. Each summary word is cleared before the
    /// words below it are read, so a message posted meanwhile is seen by the next pass.
    /// Allocates nothing.
    @inline(__always)
    func forEachPosted(_ body: (Int) -> Void) {
        visit(level: levels, group: 0, body)
    }

    /// Visits the non-zero words of `level` (0: the slots) in `group`: a slot's goes to `body`,
    /// a summary word is cleared and the group below it visited.
    private func visit(level: Int, group: Int, _ body: (Int) -> Void) {
        guard level > 0 else {
            let start = group * IMSStatusLayout.fanOut
            return forEachNonZero(words, start..<min(start + IMSStatusLayout.fanOut, layout.slots), body)
        }
        let summary = words + Int(levelStart[level - 1])
        let start = group * IMSStatusLayout.fanOut
        forEachNonZero(summary, start..<min(start + IMSStatusLayout.fanOut, Int(levelWords[level - 1]))) { j in
            _ = cvfio_take32(summary + j)
            visit(level: level - 1, group: j, body)
        }
    }
}

/// Calls `body` with each index in `range` whose word in `words` is not zero, in order; reads
/// 64 words at a time.
@inline(__always)
private func forEachNonZero(_ words: UnsafeMutablePointer<UInt32>, _ range: Range<Int>, _ body: (Int) -> Void) {
    var i = range.lowerBound
    while i < range.upperBound {
        let count = min(64, range.upperBound - i)
        var mask = cvfio_nonzero64(words + i, UInt32(count))
        while mask != 0 {
            body(i + mask.trailingZeroBitCount)
            mask &= mask - 1
        }
        i += count
    }
}
