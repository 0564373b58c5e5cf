import Dispatch
import Foundation
import Glibc
import Synchronization
import Testing
import VFIODrivers
import VFIOKit
import VFIOMock

/// The guarantees of ims.md, each a test, on the simulated IMS device with both store kinds.
@Suite struct IMSGuaranteeTests {
    static let stores = IMSQueueDriver.StoreKind.allCases

    /// Concurrent completions on every queue while other threads mask and unmask: every
    /// completion reaches its queue's handler, none twice.
    @Test(arguments: stores)
    func noInterruptIsLostWhileOthersMaskAndUnmask(_ store: IMSQueueDriver.StoreKind) throws {
        let queues = 16, perQueue = 300
        let rig = try IMSRig(store: store, queues: queues)
        defer { rig.close() }
        let domain = try #require(rig.driver.domain)
        let slots = rig.driver.slots
        let submitting = Atomic<Bool>(true)
        let toggles = Atomic<Int>(0)
        let togglers = DispatchGroup()
        for _ in 0..<2 {
            togglers.enter()
            Thread {
                defer { togglers.leave() }
                repeat {
                    let slot = slots[Int.random(in: 0..<queues)]
                    try? domain.mask(slot)
                    usleep(UInt32.random(in: 0..<200))
                    try? domain.unmask(slot)
                    toggles.add(1, ordering: .relaxed)
                } while submitting.load(ordering: .acquiring)
            }.start()
        }
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            for _ in 0..<perQueue {
                for q in stride(from: worker, to: queues, by: 4) {
                    while (try? rig.driver.submit(queue: q)) == nil { usleep(50) }
                }
                usleep(100)
            }
        }
        submitting.store(false, ordering: .releasing)
        togglers.wait()
        #expect(toggles.load(ordering: .relaxed) > 10)
        for s in slots { try domain.unmask(s) }
        try rig.waitForCompletions(UInt64(queues * perQueue))
        #expect(rig.driver.completionCounts() == Array(repeating: UInt64(perQueue), count: queues))
        for q in 0..<queues {
            let deliveries = rig.driver.deliveries(queue: q)
            #expect(deliveries >= 1 && deliveries <= UInt64(perQueue), "queue \(q): \(deliveries) deliveries")
        }
    }

    /// Once mask() returns nothing is delivered for the slot; its work waits and is delivered
    /// exactly once at unmask.
    @Test(arguments: stores)
    func nothingIsDeliveredAfterMaskReturnsAndUnmaskDeliversOnce(_ store: IMSQueueDriver.StoreKind) throws {
        let rig = try IMSRig(store: store, queues: 4)
        defer { rig.close() }
        let domain = try #require(rig.driver.domain)
        let slot = rig.driver.slots[0]
        try domain.mask(slot)
        try rig.driver.submit(queue: 0, count: 3)
        try rig.driver.submit(queue: 1)
        try rig.waitForCompletions(1)  // queue 1's completion: the device has processed both
        #expect(rig.driver.deliveries(queue: 0) == 0)
        #expect(rig.driver.completions(queue: 0) == 0)
        if store == .queueContext { #expect(try domain.isPending(slot), "producer ≠ consumer") }
        try domain.unmask(slot)
        try rig.waitForCompletions(4)
        usleep(20_000)
        #expect(rig.driver.completions(queue: 0) == 3)
        #expect(rig.driver.deliveries(queue: 0) == 1)
    }

    /// A freed slot and a stopped driver's queues deliver nothing, whatever the device does.
    @Test(arguments: stores)
    func teardownIsSilent(_ store: IMSQueueDriver.StoreKind) throws {
        let rig = try IMSRig(store: store, queues: 4)
        defer { rig.close() }
        let domain = try #require(rig.driver.domain)
        try domain.free(rig.driver.slots[2])
        try rig.driver.submit(queue: 2)
        try rig.driver.submit(queue: 3)
        try rig.waitForCompletions(1)
        usleep(20_000)
        #expect(rig.driver.deliveries(queue: 2) == 0)
        rig.driver.stop()
        let sent = rig.simulated.messagesSent
        rig.simulated.storm(queue: 1, count: 100)
        #expect(rig.simulated.messagesSent == sent, "the store shut the slot off")
        #expect(rig.driver.deliveries(queue: 1) == 0)
    }

    /// A late message from a freed slot's old owner never reaches the slot's next owner.
    @Test func aReusedSlotNeverGetsTheOldOwnersEvent() throws {
        let rig = try LoopbackRig()
        defer { rig.close() }
        let old = Atomic<Int>(0)
        let new = Arrivals<UInt32>()
        let fence = Arrivals<Int>()
        let first = try rig.domain.allocate { _ in old.add(1, ordering: .relaxed) }
        try rig.domain.unmask(first)
        let stale = rig.store.message(first.index)
        try rig.domain.free(first)
        let second = try rig.domain.allocate { slot in new.record(slot.tag) }
        let other = try rig.domain.allocate { _ in fence.record(0) }
        try rig.domain.unmask(second)
        try rig.domain.unmask(other)
        #expect(second.index == first.index)
        rig.store.deliver(stale)  // the device's late write with the old tag
        rig.store.fire(other.index)
        #expect(fence.wait(for: 1).count == 1)
        #expect(new.all.isEmpty)
        #expect(old.load(ordering: .relaxed) == 0)
        rig.store.fire(second.index)
        #expect(new.wait(for: 1) == [second.tag])
    }
}
