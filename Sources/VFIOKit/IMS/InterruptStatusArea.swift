/// DMA memory where devices write IMS messages: one 32-bit word per slot, at IOVA
/// `deviceAddress + 4 × slot`, into which the device writes the slot's tag. The memory lies
/// outside the interrupt window, so every message is an ordinary DMA write through the IOMMU.
///
/// A view of a buffer its ``IMSDomain`` owns; valid while the domain holds the buffer.
struct InterruptStatusArea: @unchecked Sendable {
    let deviceAddress: UInt64
    let words: UnsafeMutablePointer<UInt32>
    let slots: Int

    /// Allocates the memory for `slots` slots below `limit` and checks it stays clear of the
    /// interrupt window (it is freed again if not).
    static func allocate(slots: Int, dma: DMASpace, below limit: UInt64) throws(IMSError) -> DMABuffer {
        let buffer: DMABuffer
        do { buffer = try dma.allocate(max(slots, 1) * 4, below: limit) } catch { throw .framework(error) }
        let first = buffer.deviceAddress
        if InterruptMessage.msiWindow.overlaps(first...first + UInt64(slots * 4) - 1) {
            try? buffer.free()
            throw .addressInMSIWindow(max(first, InterruptMessage.msiWindow.lowerBound))
        }
        return buffer
    }

    init(_ buffer: borrowing DMABuffer, slots: Int) {
        deviceAddress = buffer.deviceAddress
        words = buffer.bytes.baseAddress!.bindMemory(to: UInt32.self, capacity: slots)
        self.slots = slots
    }

    /// The message that makes the device write `tag` into `index`'s word.
    func message(index: Int, tag: UInt32) -> InterruptMessage {
        InterruptMessage(address: deviceAddress + UInt64(index) * 4, data: tag)
    }

    /// The word the device last wrote for `index` (0: nothing since it was cleared).
    @inline(__always) func word(_ index: Int) -> UInt32 { UInt32.volatileLoad(words + index) }

    @inline(__always) func clear(_ index: Int) { UInt32.volatileStore(words + index, 0) }

    /// Calls `body` with each index below `end` whose word is not zero, in index order. Reads
    /// eight words at a time and allocates nothing.
    @inline(__always)
    func forEachWritten(below end: Int, _ body: (Int) -> Void) {
        let raw = UnsafeRawPointer(words)
        var i = 0
        while i + 8 <= end {
            let chunk = raw.load(fromByteOffset: i * 4, as: SIMD8<UInt32>.self)
            if chunk != SIMD8<UInt32>(repeating: 0) {
                for j in 0..<8 where chunk[j] != 0 { body(i + j) }
            }
            i += 8
        }
        while i < end {
            if word(i) != 0 { body(i) }
            i += 1
        }
    }
}
