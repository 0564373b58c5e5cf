/// Where an IMS status area keeps its words.
///
/// The area starts with one 32-bit word per slot, into which the slot's message writes its tag.
/// Summary levels follow: word `j` of level `k` stands for words `64j ..< 64j + 64` of level
/// `k − 1` (level 0 being the slots' words). Each level starts on a 256-byte boundary after the
/// one below. The top level has at most 64 words: the demux reads it whole on every pass, as
/// the doorbell already says that something is pending, so no single word above it is needed.
///
/// A device that posts summaries writes, after a message into slot `i`'s word, a non-zero word
/// at index `i / 64` of level 1, then at `i / 4096` of level 2, and so on up to the top level,
/// in that order (as VT-d posts an interrupt into a descriptor's request bitmap, then sets its
/// outstanding-notification bit). The demux then finds pending slots by reading 64 words per
/// level on their path, whatever the number of slots.
public struct IMSStatusLayout: Sendable, Equatable {
    /// Words of a level that one word of the level above stands for.
    public static let fanOut = 64

    /// The device address of slot 0's word.
    public let base: UInt64
    /// How many slot words the area starts with.
    public let slots: Int
    /// The byte offset from ``base`` of each summary level, level 1 first.
    public let levelOffsets: [Int]
    /// How many words each summary level has, level 1 first; the last is at most 64.
    public let levelCounts: [Int]
    /// How many bytes the whole area takes.
    public var byteCount: Int { levelOffsets.last! + levelCounts.last! * 4 }

    /// The layout of `slots` slot words from `base`, with the summary levels above them.
    public init(base: UInt64, slots: Int) {
        self.base = base
        self.slots = slots
        var offsets: [Int] = []
        var counts: [Int] = []
        var count = max(slots, 1)
        var end = count * 4
        repeat {
            count = (count + Self.fanOut - 1) / Self.fanOut
            let start = (end + 255) & ~255
            offsets.append(start)
            counts.append(count)
            end = start + count * 4
        } while count > Self.fanOut
        levelOffsets = offsets
        levelCounts = counts
    }

    /// The device address of slot `index`'s word.
    public func address(ofSlot index: Int) -> UInt64 { base + UInt64(index) * 4 }

    /// The slot whose word is at `address`, or nil for any other address.
    public func slot(at address: UInt64) -> Int? {
        guard address >= base, address % 4 == base % 4 else { return nil }
        let index = (address - base) / 4
        return index < UInt64(slots) ? Int(index) : nil
    }

    /// Calls `body` with the device address of each summary word a posting device writes after
    /// a message to `address`, in the order it writes them; nothing when `address` is not a
    /// slot's word.
    public func forEachSummary(ofMessageAt address: UInt64, _ body: (UInt64) -> Void) {
        guard let index = slot(at: address) else { return }
        forEachSummary(of: index, body)
    }

    /// Calls `body` with the device address of each summary word a posting device writes after
    /// slot `index`'s message, in the order it writes them.
    public func forEachSummary(of index: Int, _ body: (UInt64) -> Void) {
        var i = index
        for offset in levelOffsets {
            i /= Self.fanOut
            body(base + UInt64(offset + i * 4))
        }
    }
}
