#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import VFIOKit

extension IMSQueueDriver: ExercisableDriver {
    /// Queues per slot group in ``activity``: one line per group, not per queue.
    public static let slotGroupSize = 4

    /// Interrupts per IMS slot group (deliveries), completions, and each queue's submissions,
    /// completions and timeouts, for a host's status.
    public var activity: DriverActivity {
        let queues = slots.count
        let groups = stride(from: 0, to: queues, by: Self.slotGroupSize).map { first in
            let last = min(first + Self.slotGroupSize, queues) - 1
            let delivered = (first...last).reduce(UInt64(0)) { $0 + deliveries(queue: $1) }
            return DriverActivity.Vector(name: "IMS \(first)-\(last)", group: "IMS slots \(first)-\(last) on MSI-X 0", count: delivered)
        }
        let perQueue = queueActivity
        return DriverActivity(interrupts: groups, operations: perQueue.reduce(0) { $0 + $1.completed }, queues: perQueue)
    }

    /// Submits one descriptor to every queue and waits, at most 5 s, for all of them to complete;
    /// a queue that did not is counted as a timeout.
    public func exercise() throws {
        let queues = slots.count
        let before = (0..<queues).map { completions(queue: $0) }
        for q in 0..<queues { try submit(queue: q) }
        let deadline = DispatchTime.now() + .seconds(5)
        while (0..<queues).contains(where: { completions(queue: $0) <= before[$0] }) {
            guard DispatchTime.now() < deadline else {
                timedOut((0..<queues).filter { completions(queue: $0) <= before[$0] })
                throw IMSQueueError.timeout(device.address, queues: queues)
            }
            usleep(200)
        }
    }
}
