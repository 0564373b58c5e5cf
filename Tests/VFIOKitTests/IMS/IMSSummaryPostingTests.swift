import Synchronization
import Testing
import VFIOKit

/// Summary posting: the status area's levels, and a demux that reads only where a device's
/// summaries point.
@Suite struct IMSSummaryPostingTests {
    @Test func levelsShrinkBy64ToATopOfAtMost64WordsEachOn256ByteBoundaries() {
        let layout = IMSStatusLayout(base: 0x10_0000, slots: 1_000_000)
        #expect(layout.levelCounts == [15_625, 245, 4])
        var end = 1_000_000 * 4
        for (offset, count) in zip(layout.levelOffsets, layout.levelCounts) {
            #expect(offset >= end && offset % 256 == 0 && offset - end < 256)
            end = offset + count * 4
        }
        #expect(layout.byteCount == end)
        #expect(IMSStatusLayout(base: 0, slots: 1).levelCounts == [1])
        #expect(IMSStatusLayout(base: 0, slots: 64).levelCounts == [1])
        #expect(IMSStatusLayout(base: 0, slots: 65).levelCounts == [2])
        #expect(IMSStatusLayout(base: 0, slots: 4096).levelCounts == [64])
        #expect(IMSStatusLayout(base: 0, slots: 4097).levelCounts == [65, 2])
        #expect(IMSStatusLayout(base: 0, slots: 4097).byteCount == 0x4100 + 0x200 + 8, "the top level's words are all in the area")
    }

    @Test func aSlotsSummariesAreTheWordsAboveItBottomUp() {
        let layout = IMSStatusLayout(base: 0x10_0000, slots: 1_000_000)
        var written: [UInt64] = []
        layout.forEachSummary(of: 999_999) { written.append($0) }
        let o = layout.levelOffsets
        #expect(
            written == [
                0x10_0000 + UInt64(o[0] + 15_624 * 4), 0x10_0000 + UInt64(o[1] + 244 * 4),
                0x10_0000 + UInt64(o[2] + 3 * 4),
            ])
        #expect(layout.slot(at: layout.address(ofSlot: 999_999)) == 999_999)
        #expect(layout.slot(at: 0x10_0000 + 4 * 1_000_000) == nil, "a summary word is no slot")
        #expect(layout.slot(at: 0x10_0002) == nil)
        #expect(layout.slot(at: 0xf_fffc) == nil)
        // By the message's address: the same words for a slot's word, none for any other.
        var byAddress: [UInt64] = []
        layout.forEachSummary(ofMessageAt: layout.address(ofSlot: 999_999)) { byAddress.append($0) }
        #expect(byAddress == written)
        for stray: UInt64 in [0x10_0002, 0xf_fffc, 0x10_0000 + 4 * 1_000_000] {
            layout.forEachSummary(ofMessageAt: stray) {
                Issue.record("a summary 0x\(String($0, radix: 16)) for stray address 0x\(String(stray, radix: 16))")
            }
        }
    }

    @Test func everyFiredSlotIsDeliveredOnceAndNothingElse() throws {
        let rig = try LoopbackRig(capacity: 100_000, polling: true, posting: true)
        defer { rig.close() }
        let fired = Arrivals<Int>()
        let handler = IMSHandler { slot in fired.record(slot.index) }
        let slots = try allocateUnmasked(100_000, in: rig.domain, handler: handler)
        var generator = SystemRandomNumberGenerator()
        let chosen = Set((0..<300).map { _ in Int.random(in: 0..<100_000, using: &generator) } + [0, 63, 64, 4095, 4096, 99_999])
        for i in chosen { rig.store.fire(slots[i].index) }
        #expect(rig.domain.poll() == chosen.count)
        #expect(fired.all.sorted() == chosen.sorted())
        #expect(rig.domain.poll() == 0, "the walk cleared what it followed")
    }

    @Test func thePostedWalkReadsOnlyWhereSummariesPoint() throws {
        let rig = try LoopbackRig(capacity: 100_000, polling: true, posting: true)
        defer { rig.close() }
        let fired = Arrivals<Int>()
        let handler = IMSHandler { slot in fired.record(slot.index) }
        let slots = try allocateUnmasked(100_000, in: rig.domain, handler: handler)
        // A message with no summaries above it is not found: the demux does not read every word.
        rig.store.write(rig.store.message(slots[70_000].index), posting: false)
        rig.store.fire(slots[5].index)
        #expect(rig.domain.poll() == 1)
        #expect(fired.all == [5])
        // Once a summary in its group is posted, the walk reaches it too.
        rig.store.fire(slots[70_001].index)
        #expect(rig.domain.poll() == 2)
        #expect(fired.all.sorted() == [5, 70_000, 70_001])
    }

    @Test func aMessageThatLandsWhileMaskedIsDeliveredOnceAtUnmask() throws {
        let rig = try LoopbackRig(capacity: 10_000, polling: true, posting: true)
        defer { rig.close() }
        let count = Atomic<Int>(0)
        let slot = try rig.domain.allocate { _ in count.add(1, ordering: .relaxed) }
        try rig.domain.unmask(slot)
        try rig.domain.mask(slot)
        // A late write from the device, landing after the mask: it stays pending.
        rig.store.write(rig.store.message(slot.index))
        #expect(rig.domain.poll() == 0)
        #expect(try rig.domain.isPending(slot))
        try rig.domain.unmask(slot)
        #expect(rig.domain.poll() == 1)
        #expect(rig.domain.poll() == 0)
        #expect(count.load(ordering: .relaxed) == 1)
    }

    private func allocateUnmasked(_ count: Int, in domain: IMSDomain, handler: IMSHandler) throws -> [IMSSlot] {
        try domain.batch { (b) throws(IMSError) -> [IMSSlot] in
            var slots: [IMSSlot] = []
            for _ in 0..<count {
                let s = try b.allocate(handler: handler)
                try b.unmask(s)
                slots.append(s)
            }
            return slots
        }
    }
}
