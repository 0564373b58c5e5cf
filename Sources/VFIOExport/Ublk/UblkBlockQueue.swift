import VFIODrivers
import VFIOKit

/// The block queue one ublk queue serves from. The ublk queue's thread is its only user for
/// the life of the queue, so an implementation takes no lock; ``start(_:tag:data:)`` and
/// ``reap(_:)`` allocate nothing.
public protocol UblkBlockQueue: AnyObject {
    /// Starts `request`, whose data (reads and writes) is `data`, the tag's DMA buffer. Its
    /// result comes back through ``reap(_:)`` under `tag`. Throws the errno to answer with when
    /// the request cannot start.
    func start(_ request: UblkRequest, tag: UInt16, data: NVMeDataRange) throws(UblkRequestError)
    /// Hands each finished request's tag and result (0 or `-errno`) to `body`; returns how many.
    @discardableResult
    func reap(_ body: (UInt16, Int32) -> Void) -> Int
    /// Requests started and not yet reaped.
    var outstanding: Int { get }
}

/// Where a ublk device's queues come from.
public protocol UblkBackend: AnyObject, Sendable {
    /// The device's shape and limits.
    var geometry: UblkGeometry { get }
    /// Block queues there are (the most ublk queues the device may have).
    var queueCount: Int { get }
    /// Tags one queue can have outstanding.
    var queueDepth: Int { get }
    /// Memory the device reads and writes directly: a queue's tag buffers, allocated once.
    func allocateData(_ bytes: Int) throws(UblkError) -> DMABuffer
    /// Runs `body` on the calling thread with block queue `index`, held for the whole call.
    func withQueue(_ index: Int, _ body: (any UblkBlockQueue) -> Void) throws(UblkError)
}
