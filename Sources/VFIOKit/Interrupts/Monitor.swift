/// State guarded by a mutex, with a condition variable for waits that sleep instead of spin.
///
/// Whoever changes what a waiter waits for calls ``update(_:)`` or, when that state is kept
/// under another lock, changes it there first and then calls ``notifyAll()``: a waiter tests its
/// predicate with this mutex held, so no wakeup is lost between its test and its sleep.
final class Monitor<State: Sendable>: @unchecked Sendable {
    private let lock = ConditionLock()
    /// Guarded by `lock`.
    private var state: State

    init(_ state: State) { self.state = state }

    /// Sleeps until `ready` holds, then runs `body`, both with the mutex held.
    func withLock<R, E: Error>(after ready: (State) -> Bool = { _ in true }, _ body: (inout State) throws(E) -> R) throws(E) -> R {
        try lock.withLock { () throws(E) -> R in
            while !ready(state) { lock.wait() }
            return try body(&state)
        }
    }

    /// Sleeps until `ready` holds.
    func wait(until ready: (State) -> Bool) { withLock(after: ready) { _ in } }

    /// Changes the state and wakes every waiter to test its predicate again.
    func update(_ body: (inout State) -> Void) {
        withLock(body)
        notifyAll()
    }

    /// Wakes every waiter to test its predicate again.
    func notifyAll() { lock.withLock { lock.broadcast() } }
}
