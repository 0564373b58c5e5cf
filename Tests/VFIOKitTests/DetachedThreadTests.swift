import Dispatch
import Testing
@testable import VFIOKit

/// The thread the event loop and the queue reactors run on.
@Suite struct DetachedThreadTests {
    /// Records its release, so a test sees when the last reference went.
    final class Held: Sendable {
        let order: Arrivals<String>
        init(_ order: Arrivals<String>) { self.order = order }
        deinit { order.record("released") }
    }

    @Test func whatTheBodyHeldIsLetGoBeforeTheThreadSaysItExited() throws {
        let order = Arrivals<String>()
        // The body waits until this thread's call has returned and let go of its copy of it.
        let go = DispatchSemaphore(value: 0)
        try startDetachedThread(
            for: "a test",
            { [held = Held(order)] in
                go.wait()
                held.order.record("ran")
            }
        ) {
            order.record("exited")
        }
        go.signal()
        #expect(order.wait(for: 3) == ["ran", "released", "exited"])
    }
}
