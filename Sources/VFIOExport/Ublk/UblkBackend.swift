import VFIODrivers
import VFIOKit

/// Where a ublk device's queues come from: for each one, a device queue and the one thread
/// that owns it (a ``QueueReactor``). The ublk queue's io_uring is watched on that thread and
/// every call on its block queue is made there, so nothing on the I/O path takes a lock.
public protocol UblkBackend: AnyObject, Sendable {
    /// The device's shape and limits.
    var geometry: BlockGeometry { get }
    /// Block queues there are (the most ublk queues the device may have).
    var queueCount: Int { get }
    /// Tags one queue can have outstanding.
    var queueDepth: Int { get }
    /// Memory the device reads and writes directly: a queue's tag buffers, allocated once.
    func allocateData(_ bytes: Int) throws(UblkError) -> DMABuffer
    /// The thread that owns device queue `index`.
    func reactor(forQueue index: Int) throws(UblkError) -> QueueReactor
    /// On ``reactor(forQueue:)``'s thread: the block queue of device queue `index`, whose
    /// ``UblkBlockQueue/onReady`` the owner calls on that thread.
    func openQueue(_ index: Int) throws(UblkError) -> any UblkBlockQueue
    /// On the same thread: `queue` gets no completions from now on.
    func closeQueue(_ queue: any UblkBlockQueue, index: Int)
}

/// A ``BlockQueue`` that tells its frontend, on the owner thread, when there is something to do:
/// finished requests to reap, or room again for a request that waited (``waitingForRoom``).
public protocol UblkBlockQueue: BlockQueue {
    var onReady: (() -> Void)? { get set }
    var waitingForRoom: Bool { get set }
}

extension NVMeBlockQueue: UblkBlockQueue {}
