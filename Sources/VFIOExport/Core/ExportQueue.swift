/// Told when a started request completes. Called on the queue's owner thread, once per
/// request that ``ExportQueue/start(_:tag:)`` accepted, after the data is in the tag's buffer
/// (read) or on the media as far as the request asked (write with FUA, flush).
public protocol ExportQueueDelegate: AnyObject {
    func exportQueue(_ queue: any ExportQueue, completed tag: Int, status: ExportStatus)
}

/// One export queue: a frontend's requests in, NVMe commands out, on one NVMe I/O queue pair
/// and the thread that owns it.
///
/// Every method is called on the owner thread (``BlockExport/openQueue(_:delegate:setUp:)``
/// runs the frontend's setup there, and the handlers given to ``watch(_:events:_:)`` run
/// there). No lock is taken and nothing is allocated per request: the tags' state and DMA
/// buffers are allocated when the queue opens.
public protocol ExportQueue: AnyObject {
    /// 0 ..< geometry.queues.
    var index: Int { get }
    var geometry: ExportGeometry { get }
    /// Tags are 0 ..< depth; at most `depth` requests are in flight.
    var depth: Int { get }
    /// Requests started and not yet completed.
    var inFlight: Int { get }

    /// The tag's data buffer: ``ExportGeometry/maxTransfer`` bytes of DMA memory, for the
    /// queue's life. A write's data goes here before ``start(_:tag:)``; a read's data is here
    /// when the delegate is told it completed.
    func buffer(tag: Int) -> UnsafeMutableRawBufferPointer

    /// Starts `request` on `tag` (which must be idle). Returns ``ExportStatus/ok`` when it
    /// started (the delegate hears of its end), or the refusal, with nothing sent to the device:
    /// EINVAL when it is outside the export, misaligned, larger than its limits or of a kind
    /// the export does not serve; EPERM when it writes to a read-only export; ESHUTDOWN once
    /// the export is stopping.
    func start(_ request: ExportRequest, tag: Int) -> ExportStatus

    /// A free tag, for a frontend without tags of its own (NBD); nil when all are in flight.
    func acquireTag() -> Int?
    /// Returns a tag taken with ``acquireTag()`` once its request completed (or was refused).
    func releaseTag(_ tag: Int)

    /// Runs `handler` on the owner thread whenever `fd` is ready for `events` (epoll flags),
    /// until ``unwatch(_:)``. The frontend keeps owning `fd`: unwatch it before closing it.
    func watch(_ fd: Int32, events: UInt32, _ handler: @escaping (UInt32) -> Void) throws(ExportError) -> ExportWatch
    func unwatch(_ watch: ExportWatch)
}

/// A watched file descriptor's registration on an owner thread.
public struct ExportWatch: Sendable, Hashable {
    public let id: Int
    public init(id: Int) { self.id = id }
}
