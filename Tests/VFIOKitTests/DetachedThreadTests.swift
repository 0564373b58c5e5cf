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
        try startDetachedThread(for: "a test", { [held = Held(order)] in held.order.record("ran") }) {
            order.record("exited")
        }
        #expect(order.wait(for: 3) == ["ran", "released", "exited"])
    }
}
