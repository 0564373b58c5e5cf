import Foundation
import Synchronization
import Testing

@testable import VFIOKit

/// The one handler table behind the event loop and the IMS domain.
@Suite struct HandlerTableTests {
    final class Handler: Sendable {
        let onRelease: @Sendable () -> Void
        init(onRelease: @escaping @Sendable () -> Void = {}) { self.onRelease = onRelease }
        deinit { onRelease() }
    }

    @Test func aStaleTagIsNotHeldAndTagsAreNeverZero() {
        let table = HandlerTable<Handler>(capacity: 2)
        let first = table.slots.withLock { $0.allocate(.passRetained(Handler()), masked: false)! }
        #expect(first.tag != 0)
        table.slots.withLock { $0.release(first.index)?.release() }
        let second = table.slots.withLock { $0.allocate(.passRetained(Handler()), masked: false)! }
        #expect(second.index == first.index && second.tag != first.tag)
        #expect(table.slots.withLock { !$0.holds(first.index, tag: first.tag) && $0.holds(second.index, tag: second.tag) })
        let ran = table.run(first.index, claim: { t in t.holds(first.index, tag: first.tag) ? t[first.index].handler : nil }) { _ in }
        #expect(!ran)
        table.slots.withLock { $0.release(second.index)?.release() }
    }

    @Test func waitingForARunningHandlerSleepsUntilItReturns() throws {
        let table = HandlerTable<Handler>(capacity: 1)
        let slot = table.slots.withLock { $0.allocate(.passRetained(Handler()), masked: false)! }
        let started = Atomic(false)
        let finish = Atomic(false)
        let returned = Atomic(false)
        let runner = Thread {
            _ = table.run(slot.index, claim: { $0[slot.index].handler }) { _ in
                started.store(true, ordering: .releasing)
                while !finish.load(ordering: .acquiring) { usleep(1000) }
                returned.store(true, ordering: .releasing)
            }
        }
        runner.start()
        while !started.load(ordering: .acquiring) { usleep(100) }
        let waiter = Thread {
            table.waitUntilNotRunning(slot.index)
            let handlerReturned = returned.load(ordering: .acquiring)
            #expect(handlerReturned, "the wait returned while the handler ran")
        }
        waiter.start()
        usleep(20_000)
        #expect(!waiter.isFinished)
        finish.store(true, ordering: .releasing)
        for _ in 0..<5_000 where !waiter.isFinished { usleep(1000) }
        #expect(waiter.isFinished)
        table.slots.withLock { $0.release(slot.index)?.release() }
    }

    @Test func aHandlerReleasedWhileItRunsIsReleasedWhenItReturns() {
        let table = HandlerTable<Handler>(capacity: 1)
        let gone = Mutex(false)
        let slot = table.slots.withLock { $0.allocate(.passRetained(Handler { gone.withLock { $0 = true } }), masked: false)! }
        var goneDuringRun = true
        let ran = table.run(slot.index, claim: { $0[slot.index].handler }) { _ in
            let handed = table.slots.withLock { $0.release(slot.index) }
            #expect(handed == nil, "the table kept the running handler")
            // A newcomer in the freed slot is not the one running: its release is immediate.
            let newcomer = table.slots.withLock { $0.allocate(.passRetained(Handler()), masked: false)! }
            #expect(newcomer.index == slot.index)
            let other = table.slots.withLock { $0.release(newcomer.index) }
            #expect(other != nil)
            other?.release()
            goneDuringRun = gone.withLock { $0 }
        }
        #expect(ran && !goneDuringRun)
        #expect(gone.withLock { $0 })
    }
}
