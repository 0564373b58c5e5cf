import VFIODrivers
import VFIOKit

/// Where a ublk device's queues come from.
public protocol UblkBackend: AnyObject, Sendable {
    /// The device's shape and limits.
    var geometry: BlockGeometry { get }
    /// Block queues there are (the most ublk queues the device may have).
    var queueCount: Int { get }
    /// Tags one queue can have outstanding.
    var queueDepth: Int { get }
    /// Memory the device reads and writes directly: a queue's tag buffers, allocated once.
    func allocateData(_ bytes: Int) throws(UblkError) -> DMABuffer
    /// Runs `body` on the calling thread with block queue `index`, held for the whole call: the
    /// ublk queue's thread is its only user, so it takes no lock.
    func withQueue(_ index: Int, _ body: (any BlockQueue) -> Void) throws(UblkError)
}
