/// Delivery: from the status area to the slots' handlers.
///
/// A message has landed when its slot's word holds the slot's tag. When the device posts
/// summaries, the demux walks them down to the written words, reading 64 words per level on each
/// pending slot's path; otherwise it reads every word below the highest index ever allocated,
/// eight at a time. For each written word it checks the
/// tag (a stale tag is dropped) and the mask (a masked slot keeps its word, so the message stays
/// pending), clears the word and then runs the handler, so a message that lands after the clear
/// is seen by the next pass. It allocates nothing and holds the handler unretained.
extension IMSDomain {
    /// Delivers every message that has landed; returns how many handlers ran. In polling mode
    /// this is how handlers run; with a doorbell the event loop calls it.
    /// After ``close()`` it delivers nothing.
    @discardableResult
    public func poll() -> Int {
        withStatusMemory {
            // Passes are serialised by the status area's lock, so plain stores mark the thread
            // that runs handlers (for mask and free called from a handler).
            dispatchThread.store(Self.currentThread, ordering: .relaxed)
            defer { dispatchThread.store(0, ordering: .relaxed) }
            // The walk's closures reach the domain through an unretained reference, guaranteed
            // alive for this call, so dispatch retains nothing.
            let domain = Unmanaged.passUnretained(self)
            var delivered = 0
            if posted {
                statusArea.forEachPosted { index in
                    if domain._withUnsafeGuaranteedRef({ $0.deliver(index) }) { delivered += 1 }
                }
            } else {
                let end = handlers.slots.withLock { $0.highWater }
                statusArea.forEachWritten(below: end) { index in
                    if domain._withUnsafeGuaranteedRef({ $0.deliver(index) }) { delivered += 1 }
                }
            }
            return delivered
        }
    }

    func demux() { poll() }

    /// Delivers slot `index` if its word holds its live tag and it is unmasked.
    @inline(__always)
    private func deliver(_ index: Int) -> Bool {
        var word: UInt32 = 0
        return handlers.run(
            index,
            claim: { t in
                word = statusArea.word(index)
                let slot = t[index]
                guard slot.tag != 0, word == slot.tag else {
                    statusArea.clear(index)  // a freed slot, or an old owner's message
                    return nil
                }
                guard !slot.masked, let h = slot.handler else { return nil }
                statusArea.clear(index)
                return h
            }
        ) { handler in
            MemoryBarrier.full()
            handler.run(IMSSlot(index: index, tag: word))
        }
    }
}
